"""Retrieval-augmented generation: collections, ingestion, chunking, embeddings, vector stores
and retrieval. Importing this package is cheap; heavy libraries load on first use."""
