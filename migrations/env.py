"""Alembic environment: metadata = ORM models + catalogue-generated ledger tables.

Online, the ledger tables are those of the catalogue in effect in that database: ledgers/*.yaml plus
the items approved through admission (app/catalog/admission/live.py), so `alembic check` and
autogenerate see admitted columns as expected, never as columns to drop."""

from alembic import context
from sqlalchemy import create_engine, pool

from app.catalog.admission.live import metadata_of
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
        context.configure(
            connection=connection, target_metadata=metadata_of(connection, metadata), compare_type=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        target = metadata_of(conn, metadata)
        conn.commit()  # end the read's transaction: migrations begin their own
        context.configure(connection=conn, target_metadata=target, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
