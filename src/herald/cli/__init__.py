"""The ``herald`` command line (Typer + Rich)."""
