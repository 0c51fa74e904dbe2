"""Which ledger fields play which role in matching. A ledger without a spec has no fuzzy matching
(its rows carry a natural key, or nobody has said yet what identifies them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MatchSpec:
    name: str
    birth_date: str | None = None
    sex: str | None = None
    phone: str | None = None
    id_number: str | None = None
    addresses: tuple[str, ...] = ()

    def fields(self) -> list[str]:
        roles = (self.name, self.birth_date, self.sex, self.phone, self.id_number, *self.addresses)
        return [f for f in roles if f]

    def as_profile_row(self, row: dict[str, object]) -> dict[str, object]:
        """The row keyed by role (what scoring.profile reads)."""
        out: dict[str, object] = {"name": row.get(self.name)}
        for role in ("birth_date", "sex", "phone", "id_number"):
            code = getattr(self, role)
            if code:
                out[role] = row.get(code)
        for i, code in enumerate(self.addresses):
            out[f"address_{i}"] = row.get(code)
        return out

    @property
    def address_roles(self) -> tuple[str, ...]:
        return tuple(f"address_{i}" for i in range(len(self.addresses)))


SPECS: dict[str, MatchSpec] = {
    "person": MatchSpec(
        name="name",
        birth_date="birth_date",
        sex="sex",
        phone="phone",
        id_number="id_number",
        addresses=("residence_address", "hukou_address"),
    ),
    # Organisations typed without a credit code: name, founding date, phone and address match.
    "organisation": MatchSpec(
        name="name",
        birth_date="established_on",
        phone="legal_rep_phone",
        id_number="credit_code",
        addresses=("address",),
    ),
}


def spec_for(ledger: str) -> MatchSpec | None:
    return SPECS.get(ledger)
