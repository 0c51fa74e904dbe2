"""access version: one row every change of who may read what bumps, in the changing transaction

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 05:50:00

Processes cache a caller's principal, grants and catalogue keyed by this number (app/access/cache.py)
and check it inside the statement that reads the data. Statement-level triggers on the tables that
decide access (grants, users, service accounts, org units, logged-out tokens, catalogue versions)
bump it, so no writer (service, CLI, migration, hand SQL) can forget to. The new value comes from a
sequence, never reused even when a bump rolls back: one number always means one state.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> the trigger's events (users: only the columns a principal is built from; logins update
# the failure counters and must not empty every cache)
_WATCHED = {
    "access_grant": "INSERT OR UPDATE OR DELETE OR TRUNCATE",
    "app_user": "INSERT OR DELETE OR TRUNCATE OR UPDATE OF username, org_unit_id, roles, active, token_version",
    "service_account": "INSERT OR UPDATE OR DELETE OR TRUNCATE",
    "org_unit": "INSERT OR UPDATE OR DELETE OR TRUNCATE",
    "revoked_token": "INSERT",
    "catalog_version": "INSERT OR UPDATE OR DELETE OR TRUNCATE",
}


def upgrade() -> None:
    op.execute("CREATE SEQUENCE access_version_seq")
    op.execute("""
        CREATE TABLE access_version (
            id smallint PRIMARY KEY CHECK (id = 1),
            version bigint NOT NULL
        )""")
    op.execute("INSERT INTO access_version (id, version) VALUES (1, nextval('access_version_seq'))")
    op.execute("""
        CREATE FUNCTION access_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE access_version SET version = nextval('access_version_seq') WHERE id = 1;
            RETURN NULL;
        END $$""")
    for table, events in _WATCHED.items():
        op.execute(
            f"CREATE TRIGGER {table}_access_version AFTER {events} ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION access_version_bump()"
        )


def downgrade() -> None:
    for table in _WATCHED:
        op.execute(f"DROP TRIGGER {table}_access_version ON {table}")
    op.execute("DROP FUNCTION access_version_bump()")
    op.execute("DROP TABLE access_version")
    op.execute("DROP SEQUENCE access_version_seq")
