"""Per-request GraphQL context: the request's one session, the settings and the caller.

Credentials are read with the same functions as REST. Wrong credentials answer 401 problem+json like
REST; no credentials leave the principal empty, so GraphiQL can load the schema (when introspection is
allowed) while every ledger field answers UNAUTHENTICATED.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.fastapi import BaseContext

from app.access.policy import LedgerPolicy, grants_for, resolve
from app.auth.deps import api_key_scheme, app_settings, authenticate, oauth2_scheme
from app.auth.principal import Principal
from app.catalog.loader import get_catalog
from app.config import Settings
from app.db.deps import Session
from app.graphql import cache
from app.graphql.errors import unauthenticated


class GraphQLContext(BaseContext):
    def __init__(self, session: AsyncSession, settings: Settings, principal: Principal | None):
        super().__init__()
        self.session = session
        self.settings = settings
        self.principal = principal
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
        if self._fingerprint is None:
            p = self.require_principal()
            inputs = (p.kind, p.region_prefix, get_catalog().stamp, tuple(sorted(
                (rank, g.id or 0, g.ledger, g.field, g.level, bool(g.allow_lookup), g.row_scope,
                 tuple(g.regions or ())) for rank, g in self._grants)))
            fp = cache.policies.get(inputs)
            if fp is None:
                fp = tuple(
                    (code, pol.scope, tuple((c, fa.level, fa.mask, fa.allow_lookup) for c, fa in pol.fields.items()))
                    for code in sorted(get_catalog().ledgers) for pol in [self.policy(code)])
                cache.policies.put(inputs, fp)
            self._fingerprint = fp
        return self._fingerprint

    def policy(self, ledger: str) -> LedgerPolicy:
        """Pure resolution from the loaded grants: nested ledgers cost no extra statement."""
        assert self._grants is not None, "load_grants() first"
        pol = self._policies.get(ledger)
        if pol is None:
            pol = self._policies[ledger] = resolve(self.require_principal(), get_catalog().ledgers[ledger],
                                                   self._grants)
        return pol


async def get_context(
    request: Request,
    session: Session,
    bearer: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> GraphQLContext:
    settings = app_settings(request)
    principal = getattr(request.state, "principal", None)
    if principal is None and (bearer or api_key):
        principal = await authenticate(session, settings, bearer=bearer, api_key=api_key)
        request.state.principal = principal
    return GraphQLContext(session, settings, principal)
