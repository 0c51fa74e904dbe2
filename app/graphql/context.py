"""Per-request GraphQL context: the request's one session, the settings and the caller.

Credentials are read with the same functions as REST. Wrong credentials answer 401 problem+json like
REST; no credentials leave the principal empty, so GraphiQL can load the schema (when introspection is
allowed) while every ledger field answers UNAUTHENTICATED.

A caller found in the access cache (app/access/cache.py) gets a *fast* context: no catalogue or caller
query, policies shared with every request of the same access version, and each ledger root field one
autocommit statement that also returns the database's access version (executor.py). A request
whose statements saw another version, that met any error, or that ran no ledger statement and whose
version no longer matches at the end, is answered again the long way (router.py) — its first answer
is never sent.
"""

from __future__ import annotations

import asyncio

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.fastapi import BaseContext

from app.access import cache as access_cache
from app.access.cache import Access
from app.access.policy import LedgerPolicy, grants_for, resolve
from app.auth.deps import CallerCredentials, app_settings
from app.auth.principal import Credentials, Principal
from app.catalog.admission import live as catalog_live
from app.catalog.loader import IN_EFFECT, get_catalog
from app.config import Settings
from app.db.deps import LazySession
from app.db.fast import Reads
from app.graphql import cache
from app.graphql.errors import unauthenticated


class GraphQLContext(BaseContext):
    def __init__(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal | None,
        *,
        creds: Credentials | None = None,
        access: Access | None = None,
        reads: Reads | None = None,
    ):
        super().__init__()
        self.session = session
        self.settings = settings
        self.principal = principal
        self.creds = creds or Credentials(None, None)
        # The caller's cache entry (fast or just refreshed); `reads` only on the fast way.
        self.access = access
        self.reads = reads
        self.stale = False  # fast way: a statement saw another access version, or something failed
        self.confirmed = False  # fast way: a statement saw the cached access version
        # One AsyncSession must not run two statements at once; root fields resolve concurrently.
        self.lock = asyncio.Lock()
        self._grants: list | None = None
        self._policies: dict[str, LedgerPolicy] = {}
        self._fingerprint: tuple | None = None

    def require_principal(self) -> Principal:
        if self.principal is None:
            raise unauthenticated()
        return self.principal

    async def load_grants(self) -> None:
        """The caller's grants, read once per request (cached on the session as for REST)."""
        if self._grants is None and self.access is not None:
            self._grants = self.access.grants
        if self._grants is None:
            principal = self.require_principal()
            async with self.lock:
                self._grants = await grants_for(self.session, principal)

    def policy_fingerprint(self) -> tuple:
        """Everything of the caller's access that can change a statement: per ledger of the catalogue,
        the row scope and each field's level, mask and lookup right (cache.py keys statements on it).

        Resolved from the grants (which were just read, so a grant change shows at once) and memoised
        per distinct grant set and principal kind and region, the only inputs of `resolve`."""
        assert self._grants is not None, "load_grants() first"
        if self._fingerprint is None and self.access is not None:
            self._fingerprint = self.access.memo("graphql.fingerprint", self._build_fingerprint)
        return self._build_fingerprint()

    def _build_fingerprint(self) -> tuple:
        if self._fingerprint is None:
            p = self.require_principal()
            inputs = (
                p.kind,
                p.region_prefix,
                get_catalog().stamp,
                tuple(
                    sorted(
                        (
                            rank,
                            g.id or 0,
                            g.ledger,
                            g.field,
                            g.level,
                            bool(g.allow_lookup),
                            g.row_scope,
                            tuple(g.regions or ()),
                        )
                        for rank, g in self._grants or ()
                    )
                ),
            )
            fp = cache.policies.get(inputs)
            if fp is None:
                fp = tuple(
                    (
                        code,
                        pol.scope,
                        tuple((c, fa.level, fa.mask, fa.allow_lookup) for c, fa in pol.fields.items()),
                    )
                    for code in sorted(get_catalog().ledgers)
                    for pol in [self.policy(code)]
                )
                cache.policies.put(inputs, fp)
            self._fingerprint = fp
        return self._fingerprint

    def policy(self, ledger: str) -> LedgerPolicy:
        """Pure resolution from the loaded grants: nested ledgers cost no extra statement."""
        assert self._grants is not None, "load_grants() first"
        if self.access is not None:
            return self.access.policy(ledger)
        pol = self._policies.get(ledger)
        if pol is None:
            pol = self._policies[ledger] = resolve(
                self.require_principal(), get_catalog().ledgers[ledger], self._grants
            )
        return pol


async def get_context(request: Request, session: LazySession, creds: CallerCredentials) -> GraphQLContext:
    settings = app_settings(request)
    access = access_cache.lookup(creds)
    if access is not None:
        IN_EFFECT.set(access.catalog)
        request.state.principal = access.principal
        return GraphQLContext(
            session, settings, access.principal, creds=creds, access=access, reads=Reads(request, session)
        )
    return await slow_context(request, session, creds)


async def slow_context(request: Request, session: AsyncSession, creds: Credentials) -> GraphQLContext:
    """The long way: catalogue, access version, caller and grants read in the request's transaction
    (and the cache entry refreshed)."""
    settings = app_settings(request)
    await catalog_live.enter(session)
    if creds.key is None:
        return GraphQLContext(session, settings, None, creds=creds)
    access = await access_cache.load(session, settings, creds)
    access_cache.seed_session(session, access)
    request.state.principal = access.principal
    return GraphQLContext(session, settings, access.principal, creds=creds, access=access)
