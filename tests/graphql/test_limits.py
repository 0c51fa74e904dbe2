"""Item 13 (GraphQL floods: body size, token count, every selection counted) and item 15 (malformed
cursors are the caller's error) on /graphql."""

from __future__ import annotations

import base64
import json

import pytest

from app.graphql import limits
from tests.graphql.conftest import GRAPHQL, codes, gql


def _aliases(n: int) -> str:
    return "{ " + " ".join(f"a{i}: __typename" for i in range(n)) + " }"


async def test_item13_100k_typename_aliases_refused_before_parsing(app, client, world):
    query = _aliases(100_000)
    # With the default body cap the flood never reaches the GraphQL layer: 413 problem+json.
    r = await client.post(GRAPHQL, json={"query": query})
    assert r.status_code == 413, r.text[:300]
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "request.too_large"
    # With a cap large enough to let it in, the token count refuses it before the parser runs.
    app.state.settings.graphql_max_body_bytes = 8 * 1024 * 1024
    try:
        r = await client.post(GRAPHQL, json={"query": query})
    finally:
        app.state.settings.graphql_max_body_bytes = 1024 * 1024
    assert r.status_code == 400, r.text[:300]
    assert codes(r.json()) == ["QUERY_TOO_LARGE"]
    assert str(limits.MAX_TOKENS) in r.json()["errors"][0]["message"]


async def test_item13_token_limit_applies_to_get_and_plain_typename(client, world):
    query = "{" + " __typename" * (limits.MAX_TOKENS + 1) + "}"
    r = await client.get(GRAPHQL, params={"query": query}, headers=world.a)
    assert r.status_code == 400 and codes(r.json()) == ["QUERY_TOO_LARGE"], r.text[:300]
    r = await client.post(GRAPHQL, json={"query": query}, headers=world.a)
    assert r.status_code == 400 and codes(r.json()) == ["QUERY_TOO_LARGE"], r.text[:300]


@pytest.mark.parametrize(
    "query",
    [
        _aliases(limits.MAX_FIELDS_PER_SELECTION + 1),  # aliases of __typename in one selection
        "{" + " __typename" * (limits.MAX_FIELDS + 1) + "}",  # one response key, many selections
        "{ persons { nodes { ...F ...F ...F } } } fragment F on Person { "
        + " ".join(f"t{i}: __typename" for i in range(20))
        + " }",  # spreads count each time
        # A fragment bomb: each fragment spreads the next twice (2^20 selections if expanded).
        "{ ...F0 } "
        + " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(20))
        + " fragment F20 on Query { __typename }",
    ],
)
async def test_item13_every_selection_counts_against_breadth(client, world, query):
    body = await gql(client, world.a, query)
    assert "QUERY_TOO_BROAD" in codes(body), body


async def test_item13_oversized_body_is_413(client, world):
    r = await client.post(
        GRAPHQL,
        content=b'{"query": "{ me { name } }", "x": "' + b"x" * (2 * 1024 * 1024) + b'"}',
        headers={**world.a, "content-type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["code"] == "request.too_large"


async def test_item13_invalid_utf8_and_json_are_400(client, world):
    for content in (b'{"query": "{ me { name } }\xff\xfe"}', b'{"query": "\\ud800"}', b"{not json"):
        r = await client.post(
            GRAPHQL, content=content, headers={**world.a, "content-type": "application/json"}
        )
        assert r.status_code == 400, (content, r.status_code, r.text)
        assert r.json()["code"] == "request.json_invalid"


async def test_item13_normal_queries_still_work(client, world, seed):
    body = await gql(
        client, world.a, "{ __typename me { name } persons(first: 2) { __typename nodes { id name } } }"
    )
    assert "errors" not in body, body
    assert body["data"]["__typename"] == "Query" and len(body["data"]["persons"]["nodes"]) == 2


def _cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 !!",
        base64.urlsafe_b64encode(b"not json").decode(),
        _cursor({"a": 1}),
        _cursor([1]),
        _cursor(["not-a-date", 1]),
        _cursor([19900101, 1]),
        _cursor(["1990-01-01", "abc"]),
        _cursor(["1990-01-01", 2**70]),
        _cursor([True, 1]),
        _cursor(["1990-01-01\u0000", 1]),
    ],
)
@pytest.mark.parametrize("as_variable", [False, True])
async def test_item15_malformed_cursor_is_bad_user_input(client, world, seed, cursor, as_variable):
    if as_variable:
        query = "query($c: String) { persons(orderBy: [{field: BIRTH_DATE}], after: $c) { nodes { id } } }"
        body = await gql(client, world.a, query, {"c": cursor})
    else:
        body = await gql(
            client,
            world.a,
            "{ persons(orderBy: [{field: BIRTH_DATE}], after: "
            f"{json.dumps(cursor)}) {{ nodes {{ id }} }} }}",
        )
    assert codes(body) == ["BAD_USER_INPUT"], body
    assert body["data"] == {"persons": None} or body["data"] is None
    assert "not-a-date" not in json.dumps(body, ensure_ascii=False)


async def test_item13_long_documents_are_validated_off_the_event_loop(client, world, monkeypatch):
    """Thousands of selections under the token cap cost about a second of parsing and validation: that
    work runs in a worker thread, not on the event loop; a short document stays on the loop (a thread
    hop costs more than it saves). Checked by where the work runs, not by timing it."""
    import threading

    import anyio.to_thread

    loop_thread = threading.get_ident()
    worker_threads: list[int] = []
    real_run_sync = anyio.to_thread.run_sync

    async def recording_run_sync(func, *args, **kwargs):
        def run(*a):
            worker_threads.append(threading.get_ident())
            return func(*a)

        return await real_run_sync(run, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", recording_run_sync)
    r = await client.post(GRAPHQL, json={"query": "{ __typename }"})
    assert r.status_code == 200 and r.json()["data"] == {"__typename": "Query"}, r.text[:300]
    assert worker_threads == []  # short: parsed and validated on the loop
    r = await client.post(GRAPHQL, json={"query": "{" + " __typename" * (limits.MAX_TOKENS - 10) + "}"})
    assert r.status_code == 200 and "QUERY_TOO_BROAD" in codes(r.json())
    assert len(worker_threads) >= 2, worker_threads  # parse and validate each went to a worker thread
    assert loop_thread not in worker_threads
