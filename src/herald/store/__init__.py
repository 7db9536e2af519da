"""SQL metadata: table definitions and Alembic migrations."""
