"""Alembic environment: runs on the connection handed over by ``cloud.db.session.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from cloud.db.models import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    from cloud.config import load_cloud_config
    from cloud.db.session import make_engine

    connection = make_engine(load_cloud_config().database_url).connect()

context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        # Two workers starting together must not both run the same migration.
        connection.execute(text("SELECT pg_advisory_xact_lock(5050301)"))
    context.run_migrations()
