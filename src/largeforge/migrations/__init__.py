"""Alembic migrations of the LargeForge database."""
