"""Storage: typed tables, engine set-up, small query functions, alembic migrations."""
