"""Model sources: registry names, hub ids, local folders and the bundled SmolLM2 GGUF."""
