"""Alembic environment: runs on the connection the Store passes in; never touches logging config."""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("fusion_core migrations run through fusion_core.store.Store, which passes a connection")

context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
