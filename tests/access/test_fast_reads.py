"""Cached callers (app/access/cache.py) and single-statement reads (app/db/fast.py), in a database whose
changes really commit and with the service's own engines (autocommit reads, no pre-ping).

Two-sided: a warm cache answers with one round trip and the right data; a revoked grant, a disabled
user, a logged-out or expired token, a hand-edited grant are refused or applied on the very next request.
Round trips are counted on the wire (libpq trace of every connection of both engines).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import psycopg
import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.access import cache as access_cache
from app.access.models import Grant
from app.auth.tokens import ALGORITHM
from app.db.engine import libpq_conninfo, make_engine, make_sessionmaker
from app.db.ledger_tables import tables
from tests.conftest import own_database
from tests.factories import auth_headers, make_org_unit, make_user
from tests.graphql.conftest import person_values
from tests.world import VILLAGE_A, A

PERSONS = "/api/v1/ledgers/person/records"
_names = itertools.count()


@pytest.fixture(scope="module")
def own_url(database_url: str) -> Iterator[str]:
    with own_database(database_url, "onetable_fastreads") as (url, _cfg):
        yield url


class Wire:
    """Counts client round trips (a Sync or a simple Query message) on every traced connection."""

    def __init__(self) -> None:
        self.file = tempfile.NamedTemporaryFile(mode="w+b", suffix=".trace")
        self.mark = 0
        self.statements: list[str] = []

    def attach(self, engine: AsyncEngine) -> None:
        def traced(dbapi_connection, connection_record) -> None:
            pgconn = dbapi_connection.driver_connection.pgconn
            pgconn.trace(self.file.fileno())
            pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

        event.listen(engine.sync_engine, "connect", traced)
        event.listen(
            engine.sync_engine,
            "before_cursor_execute",
            lambda conn, cursor, statement, *rest: self.statements.append(statement),
        )

    def lines(self) -> list[str]:
        self.file.flush()
        os.fsync(self.file.fileno())
        with open(self.file.name, "rb") as f:
            f.seek(self.mark)
            data = f.read()
        return data.decode("utf-8", "replace").splitlines()

    def reset(self) -> None:
        self.statements.clear()
        self.file.flush()
        self.mark = os.path.getsize(self.file.name)

    def round_trips(self) -> list[str]:
        out = []
        for line in self.lines():
            parts = line.split("\t")
            if len(parts) >= 3 and parts[0] == "F" and parts[2] in ("Sync", "Query"):
                out.append(line)
        return out

    def queries(self) -> list[str]:
        return [
            ln for ln in self.lines() if ln.startswith("F\t") and ("\tParse\t" in ln or "\tQuery\t" in ln)
        ]


@dataclass
class Site:
    client: httpx.AsyncClient
    app: object
    wire: Wire
    settings: object
    url: str
    town: dict
    dept: dict
    admin: dict
    users: dict
    person: int


@pytest.fixture
async def site(own_url: str, settings) -> AsyncIterator[Site]:
    from app.main import create_app

    s = settings.model_copy(update={"database_url": own_url, "audit_chain_interval_seconds": 0})
    n = next(_names)
    setup = make_engine(own_url, s)
    async with make_sessionmaker(setup)() as db:
        code = f"{A}{n:03d}"
        town = await make_org_unit(
            db, code=f"t{n}", name="临江镇", kind="township", region_code=code[:9] + "000"
        )
        dept = await make_org_unit(
            db,
            code=f"d{n}",
            name="区残联",
            kind="department",
            region_code="500118000000",
            department_code="cl",
        )
        platform = await make_org_unit(
            db, code=f"p{n}", name="区大数据局", kind="platform", region_code="500118000000"
        )
        users = {
            "town": await make_user(db, username=f"ta{n}", org_unit=town, roles=["township_admin"]),
            "dept": await make_user(db, username=f"cl{n}", org_unit=dept, roles=["dept_staff"]),
            "admin": await make_user(db, username=f"admin{n}", org_unit=platform, roles=["platform_admin"]),
        }
        db.add(
            Grant(
                grantee_type="user",
                user_id=users["town"].id,
                ledger="*",
                field="*",
                level="write",
                row_scope="own",
                created_by="test",
            )
        )
        t = tables().ledgers["person"]
        values = person_values(n, VILLAGE_A)
        person = (await db.execute(insert(t).values(**values).returning(t.c.id))).scalar_one()
        await db.commit()
    await setup.dispose()
    access_cache.clear()
    app = create_app(s)
    wire = Wire()
    async with app.router.lifespan_context(app):
        wire.attach(app.state.read_engine)
        wire.attach(app.state.sessionmaker.kw["bind"])
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Site(
                client,
                app,
                wire,
                s,
                own_url,
                auth_headers(s, users["town"]),
                auth_headers(s, users["dept"]),
                auth_headers(s, users["admin"]),
                users,
                person,
            )


def _sql(url: str, statement: str, *params) -> None:
    """A change made outside the service (another process, hand SQL), committed."""
    with psycopg.connect(libpq_conninfo(url), autocommit=True) as conn:
        conn.execute(statement, params)


async def _warm(site: Site, headers: dict) -> dict:
    r = await site.client.get(f"{PERSONS}/{site.person}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_warm_rest_get_is_one_round_trip_with_the_right_data(site: Site):
    cold = await _warm(site, site.dept)  # caller and grants read, cache filled
    site.wire.reset()
    r = await site.client.get(f"{PERSONS}/{site.person}", headers=site.dept)
    assert r.status_code == 200 and r.json() == cold
    assert r.headers["ETag"] == f'W/"{cold["version"]}"'
    assert (
        cold["id_number"] != person_values(0, VILLAGE_A)["id_number"] and "*" in cold["id_number"]
    )  # masked
    trips = site.wire.round_trips()
    assert len(trips) == 1, site.wire.queries()
    assert (
        len(site.wire.statements) == 1 and "access_version" in site.wire.statements[0]
    )  # the version check rides in it


async def test_warm_rest_get_of_unmasked_sensitive_values_appends_its_audit_row(site: Site):
    cold = await _warm(site, site.town)
    assert "*" not in cold["id_number"]  # the township reads its ID numbers
    before = await _audit_rows(site.url, site.users["town"].username)
    site.wire.reset()
    r = await site.client.get(f"{PERSONS}/{site.person}", headers=site.town)
    assert r.status_code == 200 and r.json() == cold
    assert len(site.wire.round_trips()) == 2  # the statement and the audit append, nothing else
    assert await _audit_rows(site.url, site.users["town"].username) == before + 1


async def _audit_rows(url: str, username: str) -> int:
    with psycopg.connect(libpq_conninfo(url)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit_log WHERE actor LIKE %s AND action = 'read_sensitive'",
            (f"%:{username}",),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_warm_graphql_person_by_id_is_one_round_trip(site: Site):
    q = {
        "query": "query($id: ID!) { person(id: $id) { id name idNumber } }",
        "variables": {"id": str(site.person)},
    }
    r1 = await site.client.post("/graphql", json=q, headers=site.dept)
    assert r1.status_code == 200 and "errors" not in r1.json(), r1.text
    site.wire.reset()
    r2 = await site.client.post("/graphql", json=q, headers=site.dept)
    assert r2.json() == r1.json() and r2.json()["data"]["person"]["id"] == str(site.person)
    assert len(site.wire.round_trips()) == 1, site.wire.queries()


async def test_warm_rest_list_is_one_round_trip(site: Site):
    r1 = await site.client.get(PERSONS, params={"limit": 5}, headers=site.dept)
    assert r1.status_code == 200 and r1.json()["items"], r1.text
    site.wire.reset()
    r2 = await site.client.get(PERSONS, params={"limit": 5}, headers=site.dept)
    assert r2.json() == r1.json()
    assert len(site.wire.round_trips()) == 1, site.wire.queries()


async def test_revoked_grant_applies_on_the_next_request(site: Site):
    r = await site.client.post(
        "/api/v1/grants",
        headers=site.admin,
        json={
            "grantee_type": "user",
            "username": site.users["dept"].username,
            "ledger": "person",
            "field": "id_number",
            "level": "read",
            "row_scope": "all",
        },
    )
    assert r.status_code == 201, r.text
    granted = await _warm(site, site.dept)
    assert "*" not in granted["id_number"]
    assert (await _warm(site, site.dept))["id_number"] == granted["id_number"]  # warm: still granted
    assert (
        await site.client.delete(f"/api/v1/grants/{r.json()['id']}", headers=site.admin)
    ).status_code == 204
    after = await _warm(site, site.dept)
    assert "*" in after["id_number"] and after["id_number"] != granted["id_number"]
    q = {"query": "query($id: ID!) { person(id: $id) { idNumber } }", "variables": {"id": str(site.person)}}
    body = (await site.client.post("/graphql", json=q, headers=site.dept)).json()
    assert body["data"]["person"]["idNumber"] == after["id_number"]


async def test_grant_changed_by_hand_sql_applies_on_the_next_request(site: Site):
    await _warm(site, site.town)
    lst = await site.client.get(PERSONS, params={"limit": 5}, headers=site.town)
    assert lst.status_code == 200 and lst.json()["items"]
    # Another process narrows the township to hidden rows: no grant leaves the default scope, so the
    # grant is turned into one on an unrelated region.
    _sql(
        site.url,
        "UPDATE access_grant SET row_scope = 'regions', regions = ARRAY['500118999000'] WHERE user_id = %s",
        site.users["town"].id,
    )
    r = await site.client.get(f"{PERSONS}/{site.person}", headers=site.town)
    assert r.status_code == 404
    lst = await site.client.get(PERSONS, params={"limit": 5}, headers=site.town)
    assert lst.status_code == 200 and lst.json()["items"] == []
    q = {"query": "query($id: ID!) { person(id: $id) { id } }", "variables": {"id": str(site.person)}}
    assert (await site.client.post("/graphql", json=q, headers=site.town)).json()["data"]["person"] is None


async def test_disabled_user_is_refused_on_the_next_request(site: Site):
    await _warm(site, site.dept)
    await _warm(site, site.dept)
    _sql(site.url, "UPDATE app_user SET active = false WHERE id = %s", site.users["dept"].id)
    r = await site.client.get(f"{PERSONS}/{site.person}", headers=site.dept)
    assert r.status_code == 401 and r.json()["code"] == "auth.account_disabled"
    r = await site.client.get(PERSONS, headers=site.dept)
    assert r.status_code == 401
    r = await site.client.post("/graphql", json={"query": "{ me { name } }"}, headers=site.dept)
    assert r.status_code == 401


async def test_logged_out_token_is_refused_on_the_next_request(site: Site):
    await _warm(site, site.dept)
    r = await site.client.post("/graphql", json={"query": "{ me { name } }"}, headers=site.dept)
    assert r.status_code == 200 and r.json()["data"]["me"]["name"]
    assert (await site.client.post("/api/v1/auth/logout", headers=site.dept)).status_code == 204
    assert (await site.client.get(f"{PERSONS}/{site.person}", headers=site.dept)).status_code == 401
    # `me` runs no ledger statement: the version is checked before the cached caller answers.
    assert (
        await site.client.post("/graphql", json={"query": "{ me { name } }"}, headers=site.dept)
    ).status_code == 401


async def test_expired_token_is_refused_although_cached(site: Site):
    now = datetime.now(UTC)
    token = jwt.encode(
        {
            "sub": f"user:{site.users['dept'].id}",
            "iat": now,
            "exp": now + timedelta(seconds=2),
            "jti": secrets.token_urlsafe(16),
            "ver": 0,
        },
        site.settings.secret_key.get_secret_value(),
        algorithm=ALGORITHM,
    )
    headers = {"Authorization": f"Bearer {token}"}
    await _warm(site, headers)
    await _warm(site, headers)
    await asyncio.sleep(max(0.0, (now + timedelta(seconds=2.2) - datetime.now(UTC)).total_seconds()))
    r = await site.client.get(f"{PERSONS}/{site.person}", headers=headers)
    assert r.status_code == 401 and r.json()["code"] == "auth.invalid_token"


async def test_version_moves_with_every_access_change_and_never_repeats(site: Site):
    async def version() -> int:
        async with site.app.state.read_engine.connect() as conn:
            return int(
                (await conn.execute(text("SELECT version FROM access_version WHERE id = 1"))).scalar_one()
            )

    v0 = await version()
    _sql(site.url, "UPDATE app_user SET failed_logins = 0 WHERE id = %s", site.users["dept"].id)
    assert await version() == v0  # login counters are not access
    _sql(site.url, "UPDATE app_user SET roles = roles WHERE id = %s", site.users["dept"].id)
    v1 = await version()
    assert v1 > v0
    with psycopg.connect(libpq_conninfo(site.url)) as conn:  # a bump that rolls back ...
        conn.execute(
            "UPDATE org_unit SET name = name WHERE id = (SELECT org_unit_id FROM app_user WHERE id = %s)",
            (site.users["dept"].id,),
        )
        conn.rollback()
    assert await version() == v1
    _sql(site.url, "DELETE FROM revoked_token WHERE false")
    _sql(
        site.url,
        "INSERT INTO revoked_token (jti, user_id, expires_at) VALUES (%s, %s, now())",
        secrets.token_urlsafe(8),
        site.users["dept"].id,
    )
    v2 = await version()
    assert v2 > v1 + 1  # ... never gives its number to the next one
