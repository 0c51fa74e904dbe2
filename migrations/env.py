"""Alembic environment: metadata = ORM models + catalogue-generated ledger tables."""

from alembic import context
from sqlalchemy import create_engine, pool

from app.config import get_settings
from app.db.engine import resolve_database_url
from app.db.models import metadata

config = context.config


def _url() -> str:
    # A caller (tests, `onetable db upgrade`) may hand over a URL; otherwise settings decide.
    return config.attributes.get("url") or resolve_database_url(get_settings())


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
