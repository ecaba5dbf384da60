"""Alembic's environment and revisions: the only place the catalog schema is made."""
