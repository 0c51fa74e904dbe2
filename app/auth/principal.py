"""Who is calling: a user or a service account, with the org unit they act for."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    kind: str  # "user" | "service_account"
    id: int
    name: str
    org_unit_id: int
    org_unit_kind: str  # platform | department | township | village
    region_code: str  # the org unit's 12-digit jurisdiction root
    region_prefix: str  # LIKE prefix of that subtree
    department_code: str | None = None
    roles: frozenset[str] = frozenset()

    @property
    def actor(self) -> str:
        """How history and audit name this principal (no personal data beyond the login name)."""
        return f"{self.kind}:{self.id}:{self.name}"

    @property
    def is_platform_admin(self) -> bool:
        return "platform_admin" in self.roles


@dataclass(frozen=True)
class Credentials:
    """What a request presented: a Bearer token or an API key (or neither)."""

    bearer: str | None
    api_key: str | None

    @property
    def key(self) -> bytes | None:
        if self.bearer:
            return hashlib.sha256(b"b:" + self.bearer.encode("utf-8", "surrogatepass")).digest()
        if self.api_key:
            return hashlib.sha256(b"k:" + self.api_key.encode("utf-8", "surrogatepass")).digest()
        return None
