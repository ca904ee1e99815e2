"""Alembic environment: runs on the connection LargeForge hands over (see ``largeforge.db.migrate``)."""

from __future__ import annotations

from alembic import context

from largeforge.db import Base
from largeforge.evaluation import orm as evaluation_orm  # noqa: F401  (eval_results)
from largeforge.platform import orm_tables  # noqa: F401  (every control-plane table)
from largeforge.registry import orm  # noqa: F401  (registers the registry tables on Base.metadata)

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
