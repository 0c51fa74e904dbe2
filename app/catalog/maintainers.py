"""Who maintains a data item: the catalogue's `source` (and `owner`) read as a write rule.

An item whose source is a department (`source: department:cl`) is kept by that department's system:
it arrives by push (app/push/). Once the department has delivered the stored value (its provenance
names `department:<code>`), a township may not change it, whatever its grants say, and the answer
names the department ("由残联维护"); the difference goes to the department, not over its value.
Before the feed delivers anything, the township's stock value (首次录入) stays editable: the reform
starts from township data, and the department's first push overrides it (its value stays in
history).
The department itself, and platform administrators, may always change it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.auth.principal import Principal
from app.catalog.model import Catalog, Field, Ledger
from app.errors import FieldError, Problem


def maintaining_department(f: Field) -> str | None:
    """The department whose system keeps this item, or None (township, city platform, …)."""
    return f.source.split(":", 1)[1] if f.source.startswith("department:") else None


def may_push(f: Field, department: str) -> bool:
    """May this department's system write the item? Its owner may; the city platform connector
    (dsjj)
    may feed the items whose source is the city platform."""
    return f.owner == department or (f.source == "city_platform" and department == "dsjj")


def check_maintained(
    principal: Principal,
    ledger: Ledger,
    codes: Iterable[str],
    provenance: dict[str, Any] | None,
    catalog: Catalog,
    path_prefix: str = "body",
) -> None:
    """403 access.field_maintained naming the keeper of every item the caller may not change: items
    whose stored value their maintaining department delivered."""
    if principal.is_platform_admin:
        return
    errors = []
    for code in codes:
        f = ledger.field(code)
        dept = maintaining_department(f) if f is not None else None
        if dept is None or dept == principal.department_code:
            continue
        stored = (provenance or {}).get(code)
        if not (isinstance(stored, dict) and stored.get("source") == f"department:{dept}"):
            continue
        d = catalog.departments.get(dept)
        keeper = d.short_name if d else dept
        errors.append(FieldError(f"{path_prefix}.{code}", "access.field_maintained", f"由{keeper}维护"))
    if errors:
        raise Problem(
            403,
            "access.field_maintained",
            "该数据项由部门系统维护，镇街不能修改",
            detail="；".join(f"{e.path.rsplit('.', 1)[-1]}：{e.message}" for e in errors),
            errors=errors,
        )
