"""Per-process cache of callers: credential -> principal, grants, catalogue and resolved policies.

An entry is valid for one access version (migration 0015: a number every change of grants, users,
service accounts, org units, logged-out tokens and the catalogue replaces, in the changing
transaction). The reads that use an entry check that number inside the statement that reads the
data (app/db/fast.py): a statement that sees another number returns nothing and the request is
answered the long way, from the database, which also refreshes the entry. So a revocation takes effect
on the very next statement, in every process, and an entry never answers for a state it was not
built from. Token expiry is checked on every hit, from the token's own `exp`.

Entries are keyed by a SHA-256 of the credential, so the cache holds no usable secret.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.access.models import Grant
from app.access.policy import LedgerPolicy, grants_for, grants_key, resolve
from app.auth.deps import authenticate
from app.auth.principal import Credentials, Principal
from app.auth.tokens import decode_claims
from app.catalog.loader import get_catalog
from app.catalog.model import Catalog
from app.config import Settings
from app.errors import Problem

MAX_ENTRIES = 10_000  # credentials, and separately shared entries


@dataclass
class Access:
    """What one access version says about one caller, and what was built from it."""

    principal: Principal
    grants: list[tuple[int, Grant]]
    catalog: Catalog
    version: int
    policies: dict[str, LedgerPolicy] = field(default_factory=dict)
    built: dict[Hashable, Any] = field(default_factory=dict)

    def policy(self, ledger_code: str) -> LedgerPolicy:
        """The caller's policy for a ledger (the catalogue in effect must be self.catalog)."""
        got = self.policies.get(ledger_code)
        if got is None:
            ledger = self.catalog.ledger(ledger_code)
            if ledger is None:
                raise Problem(404, "ledger.not_found", "台账不存在")
            got = self.policies[ledger_code] = resolve(self.principal, ledger, self.grants, self.catalog)
        return got

    def memo(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """Something built from this entry alone (a compiled statement, a fingerprint)."""
        got = self.built.get(key)
        if got is None:
            got = self.built[key] = build()
        return got


# credential key -> (entry, time.time() after which the credential is refused; inf for API keys)
_entries: OrderedDict[bytes, tuple[Access, float]] = OrderedDict()
# (version, principal kind, principal id) -> entry: every token of one account shares its policies and
# compiled statements (one version is one state, so they are the same)
_shared: dict[tuple[int, str, int], Access] = {}
_lock = threading.Lock()


def lookup(creds: Credentials) -> Access | None:
    """The cached entry for these credentials, unless absent or the token has expired since."""
    key = creds.key
    if key is None:
        return None
    got = _entries.get(key)
    if got is None:
        return None
    if time.time() >= got[1]:
        forget(creds)
        return None
    return got[0]


def forget(creds: Credentials) -> None:
    key = creds.key
    if key is not None:
        with _lock:
            _entries.pop(key, None)


def clear() -> None:
    with _lock:
        _entries.clear()
        _shared.clear()


async def load(session: AsyncSession, settings: Settings, creds: Credentials) -> Access:
    """Authenticate from the database and (re)fill the cache entry.

    The session's first statement (app/catalog/admission/live.enter) read the access version and set
    the catalogue; the principal and grants are read after it, so they are never older than the
    version they are stored under (at worst newer, which the next check turns into a refresh)."""
    version = session.info.get("access_version")
    principal = await authenticate(session, settings, bearer=creds.bearer, api_key=creds.api_key)
    grants = await grants_for(session, principal)
    expires = math.inf
    if creds.bearer:
        expires = decode_claims(settings, creds.bearer).expires_at.timestamp()
    access = Access(principal, grants, get_catalog(), version if version is not None else -1)
    key = creds.key
    if version is None or key is None:
        return access
    with _lock:
        shared = _shared.get((version, principal.kind, principal.id))
        if shared is not None and shared.principal == principal and shared.catalog is access.catalog:
            access = shared
        else:
            if _shared and next(iter(_shared))[0] < version:
                # the oldest shared entry is of an older version, which no check accepts any more
                for k in [k for k in _shared if k[0] < version]:
                    del _shared[k]
            if len(_shared) >= MAX_ENTRIES:
                _shared.clear()
            _shared[(version, principal.kind, principal.id)] = access
        _entries[key] = (access, expires)
        _entries.move_to_end(key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    return access


def seed_session(session: AsyncSession, access: Access) -> None:
    """Let policy_for on this session use the grants just read instead of reading them again."""
    session.info[grants_key(access.principal)] = access.grants
