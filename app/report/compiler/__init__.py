"""Template → one SQL statement: rows of a list or aggregate report for one area, as JSON per row.

Everything goes through the access policy of the template's owning department (see
`department_principal`): a pulled field is `policy.column` (raw or masked in SQL), a filtered field
passes `check_filter`, a grouped or aggregated one `check_sort`; each joined ledger brings its own row
scope. The area (a township's prefix, or the department's whole jurisdiction for pull-only reads)
narrows every table. Values from the template are bound parameters; nothing from a caller is SQL.

The statement yields: row_key, row_no, label, record_id, region_code, data (pulled values by column
code), prov (provenance of the pulled fields, once per record read: see `PROV_PREFIX`), links (record
ids that write-back gaps update) and prefill (current ledger values of write-back gaps).
"""

from __future__ import annotations

from app.access.policy import LedgerPolicy, resolve
from app.auth.principal import Principal
from app.catalog.loader import get_catalog
from app.errors import FieldError, Problem, invalid
from app.report.compiler.aggregate_stmt import aggregate_statement
from app.report.compiler.builder import Builder
from app.report.compiler.columns import BASE, PROV_PREFIX, Compiled, OutColumn, cell_provenance, jsonb
from app.report.compiler.list_stmt import list_statement
from app.report.dsl import TemplateSpec


def department_principal(unit) -> Principal:
    """The owning department as a principal: its org-unit and default grants, no person's own grants.

    The negative id never matches a user, and keeps the session's grant cache apart per department.
    """
    from app.org.regions import region_prefix

    return Principal(
        kind="user",
        id=-unit.id,
        name=f"department:{unit.department_code}",
        org_unit_id=unit.id,
        org_unit_kind="department",
        region_code=unit.region_code,
        region_prefix=region_prefix(unit.region_code),
        department_code=unit.department_code,
        roles=frozenset(),
    )


async def department_policies(session, principal: Principal) -> dict[str, LedgerPolicy]:
    from app.access.policy import grants_for

    grants = await grants_for(session, principal)
    return {code: resolve(principal, lg, grants) for code, lg in get_catalog().ledgers.items()}


def compile_template(
    spec: TemplateSpec, policies: dict[str, LedgerPolicy], area: str, *, strict: bool = True
) -> Compiled:
    """Compile for one area (a region-code prefix). strict: unreadable fields are a 403, else reported."""
    catalog = get_catalog()
    b = Builder(spec, policies, area, catalog)
    codes = [c.code for c in spec.columns]
    for i, code in enumerate(codes):
        if code in codes[:i]:
            b.errors.append(FieldError(f"body.columns.{i}.code", "template.duplicate_code", "列代码重复"))
    base_where = b.base_where()
    if spec.kind == "list":
        stmt, outs = list_statement(b, spec, base_where)
    else:
        stmt, outs = aggregate_statement(b, spec, base_where)
    if b.errors:
        raise invalid(b.errors, "报表模板有误")
    if b.denied and strict:
        raise Problem(403, b.denied[0].code, "模板所属部门无权读取以下字段", errors=b.denied)
    return Compiled(spec, outs, stmt, b.denied, b.fields_used, b.code_rows)


__all__ = [
    "BASE",
    "PROV_PREFIX",
    "Builder",
    "Compiled",
    "OutColumn",
    "cell_provenance",
    "compile_template",
    "department_policies",
    "department_principal",
    "jsonb",
]
