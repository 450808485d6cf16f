"""Alembic environment: run against the connection store/db.py hands over (sync side of async)."""

from __future__ import annotations

from alembic import context

from omnirouter.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` CLI use (autogenerate): an offline-free, URL-based run
    from sqlalchemy import create_engine

    engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        conn.commit()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
