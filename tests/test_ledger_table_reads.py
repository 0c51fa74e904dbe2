"""Lint (issue 10): only app/access and app/query reach ledger tables; everyone else goes through them.

A direct read of a ledger, relation or history table can skip the reader's row scope and masks, which
the access policy (app/access/policy.py) and the query vocabulary built on it (app/query) apply. This
walks the AST of every module under app/ and fails on:
- `tables()` (app.db.ledger_tables) used anywhere: `tables().ledgers[...]`, `.relations`, `.history`;
- `.table` (a policy's table: `policy.table.c...`) and `.table_name` (physical names for raw SQL);
- a string or f-string naming a physical table (`lg_person`, `rel_residence`, `ledger_history`).
Builders take their FROM items from app/query/sources.py instead. What may still touch the tables
directly is listed below, each with its reason, per function, so a new read elsewhere in the same
file still fails. scripts/ is not scanned: benchmarks compare against hand-written SQL on purpose.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The policy and the query vocabulary, and app/db, which defines the tables.
ALLOWED_DIRS = ("app/access/", "app/query/", "app/db/")
ALLOWLIST: dict[tuple[str, str], str] = {
    # Physical names are defined here, from the catalogue; nothing is read.
    ("app/catalog/model.py", "Ledger.table_name"): "defines the physical table name",
    ("app/catalog/model.py", "Relation.table_name"): "defines the physical link-table name",
    # The demo's bulk loader: TRUNCATE and COPY ... FREEZE into empty tables, before anyone reads.
    ("app/demo/load.py", "*"): "bulk COPY loader of the demo district",
    ("app/demo/generate.py", "*"): "generates rows for the bulk COPY loader",
    ("app/demo/activity.py", "*"): "generates rows for the bulk COPY loader",
    # Writes, and the row locks / current values a write needs (not data returned to a reader).
    ("app/ledger/service.py", "_insert_or_conflict"): "write: table name decodes a unique-constraint name",
    ("app/ledger/service.py", "create_record"): "write: insert, and the parent's region under its scope",
    ("app/ledger/service.py", "_lock"): "write: locks the row and reads its current values for an update",
    ("app/ledger/service.py", "update_record"): "write: the UPDATE",
    ("app/ledger/service.py", "delete_record"): "write: the soft-delete UPDATE",
    ("app/ledger/history.py", "record_changes"): "write: appends history rows",
    ("app/ledger/moves.py", "move_dependents"): "write: moves extension rows and links with their record",
    ("app/ledger/related.py", "create_link"): "write: insert a link, locking both ends under their scopes",
    ("app/ledger/related.py", "_link_conflict"): "write: table name decodes a unique-constraint name",
    ("app/ledger/related.py", "delete_link"): "write: soft-deletes a link, region of the far end for history",
    (
        "app/catalog/admission/live.py",
        "_tables_of",
    ): "schema: names of the YAML tables for Alembic's metadata, no rows read",
    (
        "app/report/tasks/write_back.py",
        "write_back",
    ): "write: versions of the records a report writes back (in scope)",
    (
        "app/push/apply.py",
        "_parents",
    ): "write: locks the parent records a pushed extension row is created under",
    (
        "app/push/apply.py",
        "apply_push",
    ): "write: a department push locks, inserts and updates the records it owns "
    "items of, and appends their history (no values returned)",
    # Dedupe: matching reads only the match fields of the importer's area to score rows (nothing goes
    # to a reader: the review list reads records through the reviewer's policy); merges are writes.
    (
        "app/dedupe/candidates.py",
        "find_candidates",
    ): "matching: match fields of rows in the importer's area, scored, not returned",
    (
        "app/dedupe/candidates.py",
        "enqueue_candidates",
    ): "write: the region of each candidate's record, scoping the queue row",
    (
        "app/dedupe/merge.py",
        "_lock_record",
    ): "write: locks a record under the reviewer's scope and reads it for the merge",
    (
        "app/dedupe/merge.py",
        "_relink",
    ): "write: re-points the loser's links and extension rows to the survivor",
    ("app/dedupe/merge.py", "_table_of"): "write: the link or extension table an undo re-points back",
    ("app/dedupe/merge.py", "accept"): "write: the merge's UPDATEs (loser soft-deleted, surviving values)",
    ("app/dedupe/merge.py", "undo"): "write: the undo's UPDATEs",
    # Import jobs (docs/imports.md): bulk writes through the importer's policy, and the current values
    # a write needs; nothing read here is returned to a reader (rows show the sheet's own values).
    (
        "app/imports/plan.py",
        "existing_by_key",
    ): "write: current values (locked at commit) of the records a sheet's keys match, for survivorship",
    ("app/imports/commit.py", "insert_records"): "write: INSERT … SELECT FROM unnest of new records",
    ("app/imports/commit.py", "update_records"): "write: UPDATE … FROM unnest of changed fields",
    (
        "app/imports/households.py",
        "link",
    ): "write: households, houses and links; matches by 户号 / address in the importing township",
    (
        "app/imports/undo.py",
        "undo",
    ): "write: current values to compare, restore or soft-delete what the import wrote",
    ("app/imports/undo.py", "_unlink"): "write: soft-deletes links, households and houses the import made",
    ("app/imports/writes.py", "insert_history"): "write: appends history rows in bulk",
}

_TABLE_NAME = re.compile(r"\b(?:lg|rel)_[a-z][a-z0-9_]*\b|\bledger_history\b")


class _Finder(ast.NodeVisitor):
    """(enclosing function qualname or "<module>", what, line) for each direct table access."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.tables_names: set[str] = set()  # local names of app.db.ledger_tables.tables
        self.found: list[tuple[str, str, int]] = []

    def _hit(self, what: str, node: ast.AST) -> None:
        self.found.append((".".join(self.stack) or "<module>", what, node.lineno))

    def _scoped(self, node) -> None:
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module == "app.db.ledger_tables":
            self.tables_names |= {a.asname or a.name for a in node.names if a.name == "tables"}

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load) and node.id in self.tables_names:
            self._hit("tables()", node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in ("table", "table_name"):
            self._hit("." + node.attr, node)
        elif node.attr == "tables" and isinstance(node.value, ast.Name) and node.value.id == "ledger_tables":
            self._hit("tables()", node)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and _TABLE_NAME.search(node.value):
            self._hit("table name", node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        text = "".join(v.value if isinstance(v, ast.Constant) else "x" for v in node.values)
        if _TABLE_NAME.search(text):
            self._hit("table name", node)
        else:
            self.generic_visit(node)


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body[0] = ast.Pass()


def lint(path: str, source: str) -> list[str]:
    """Direct table accesses in one module that no allowlist entry covers, as readable lines."""
    if path.startswith(ALLOWED_DIRS):
        return []
    tree = ast.parse(source)
    _strip_docstrings(tree)  # docs may name tables; code may not
    out = []
    for where, what, line in _reads(tree):
        if (path, "*") in ALLOWLIST or (path, where) in ALLOWLIST or (path, where.split(".")[0]) in ALLOWLIST:
            continue
        out.append(f"{path}:{line} {where}: {what}")
    return out


def _reads(tree: ast.AST) -> list[tuple[str, str, int]]:
    finder = _Finder()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            finder.visit_ImportFrom(node)
    finder.visit(tree)
    return finder.found


def _modules() -> list[tuple[str, str]]:
    return [
        (p.relative_to(ROOT).as_posix(), p.read_text(encoding="utf-8"))
        for p in sorted((ROOT / "app").rglob("*.py"))
    ]


def test_nothing_outside_access_and_query_reads_a_ledger_table():
    problems = [line for path, source in _modules() for line in lint(path, source)]
    assert not problems, (
        "direct ledger-table access outside app/access and app/query: take the FROM item from "
        "app/query/sources.py (through the reader's policy), or, for a write, add an allowlist entry "
        "with its reason in tests/test_ledger_table_reads.py:\n" + "\n".join(problems)
    )


def test_every_allowlist_entry_still_names_a_direct_access():
    """A stale entry would let the next read in that function through unnoticed."""
    used: set[tuple[str, str]] = set()
    for path, source in _modules():
        tree = ast.parse(source)
        _strip_docstrings(tree)
        for where, _, _ in _reads(tree):
            used |= {(path, "*"), (path, where), (path, where.split(".")[0])}
    assert set(ALLOWLIST) - used == set()


_PLANTED = {
    "tables().ledgers": (
        'from app.db.ledger_tables import tables\n\ndef f():\n    return tables().ledgers["person"]\n'
    ),
    "tables().relations": (
        "from app.db.ledger_tables import tables as t\n\ndef f(rel):\n    return t().relations[rel]\n"
    ),
    "tables().history": "from app.db import ledger_tables\n\ndef f():\n    return ledger_tables.tables().history\n",
    "policy.table": "def f(policy):\n    return select(policy.table.c.name)\n",
    "table_name": 'def f(lg):\n    return text(f"SELECT * FROM {lg.table_name}")\n',
    "raw SQL": 'def f(s):\n    return s.execute(text("SELECT id_number FROM lg_person"))\n',
    "f-string name": 'def f(s, code):\n    return text(f"SELECT * FROM lg_{code}")\n',
    "module level": 'Q = "select * from rel_residence"\n',
}


@pytest.mark.parametrize("snippet", list(_PLANTED.values()), ids=list(_PLANTED))
def test_lint_catches_a_planted_direct_read(snippet):
    assert lint("app/report/new_reader.py", snippet), snippet
    # The same code inside app/query (or app/access) is where such reads belong.
    assert lint("app/query/new_source.py", snippet) == []


def test_allowlisting_a_function_does_not_allowlist_its_neighbours():
    write = "def update_record(policy):\n    return update(policy.table)\n"
    read = "def peek(policy):\n    return select(policy.table.c.id_number)\n"
    assert lint("app/ledger/service.py", write) == []
    assert lint("app/ledger/service.py", write + read) == ["app/ledger/service.py:4 peek: .table"]


def test_reading_through_the_query_sources_passes():
    ok = (
        'from app.query import sources\n\ndef f(policy):\n    """Reads lg_person through the policy."""\n'
        "    t = sources.ledger_table(policy)\n"
        "    return select(*policy.select_columns(t)).where(policy.scope_clause(t))\n"
    )
    assert lint("app/report/new_reader.py", ok) == []
