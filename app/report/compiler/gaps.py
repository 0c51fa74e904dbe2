"""Gap columns: cells a township types, with their validation, optionally written back to a ledger field."""

from __future__ import annotations

from app.access.levels import Level
from app.catalog.model import Field as CField, FieldType, Validator
from app.catalog.validators import PatternRefused, compile_pattern
from app.errors import FieldError
from app.report.compiler.builder import Builder
from app.report.compiler.columns import BASE, OutColumn
from app.report.dsl import GapColumn


def gap(self: Builder, c: GapColumn, where: str) -> tuple[OutColumn, tuple | None]:
    out = OutColumn(c.code, c.label, "gap", c.type or "text", required=c.required, help=c.help)
    target = None
    if c.write_back:
        wpath = f"{where}.write_back"
        if self.spec.kind != "list":
            self.errors.append(FieldError(wpath, "template.write_back", "只有清单式报表的空缺列可以写回台账"))
        else:
            r = self.resolve(c.write_back, wpath)
            if r is not None:
                alias, ledger, f, pol = r.alias, r.ledger, r.field, r.policy
                if r.ref.attribute or f.code in BASE or f.type == FieldType.reference:
                    self.errors.append(FieldError(wpath, "template.write_back", "该字段不能由报表写回"))
                elif c.type and c.type != f.type.value:
                    self.errors.append(
                        FieldError(f"{where}.type", "template.write_back_type", "空缺列类型须与写回字段一致")
                    )
                else:
                    out.type, out.codelist = f.type.value, f.codelist
                    out.gap = CField(
                        c.code,
                        c.label,
                        f.type,
                        required=c.required,
                        validator=f.validator,
                        codelist=f.codelist,
                        max_length=f.max_length,
                        precision=f.precision,
                        scale=f.scale,
                    )
                    out.write_back, out.ledger_field = (ledger, f.code), f"{ledger}.{f.code}"
                    readable = pol.level(f.code) >= Level.read
                    out.prefilled = readable
                    target = (alias.c.id, alias.c[f.code] if readable else None)
        if out.gap is None:
            out.gap = CField(c.code, c.label, FieldType.text)
        return out, target
    assert c.type is not None  # a gap column without a ledger path names its type (dsl validation)
    ftype = FieldType(c.type)
    validator = None
    if c.min is not None or c.max is not None:
        if ftype not in (FieldType.integer, FieldType.decimal):
            self.errors.append(FieldError(f"{where}.min", "template.gap_range", "min/max 只用于整数或小数"))
        validator = Validator("range", min=c.min, max=c.max)
    if c.pattern is not None or c.validator is not None:
        if ftype != FieldType.text or validator is not None:
            self.errors.append(
                FieldError(
                    f"{where}.pattern",
                    "template.gap_validator",
                    "正则或格式校验只用于文本，且不能与 min/max 同用",
                )
            )
        elif c.pattern is not None:
            try:
                compile_pattern(c.pattern)  # refused here, at definition, not when a cell comes
                validator = Validator("pattern", pattern=c.pattern)
            except PatternRefused:
                self.errors.append(
                    FieldError(
                        f"{where}.pattern",
                        "template.gap_pattern",
                        "正则表达式无效或不受支持（不支持反向引用、环视，长度不超过 200）",
                    )
                )
        elif c.validator is not None:
            validator = Validator(c.validator)
    if ftype == FieldType.code:
        if not c.codelist or c.codelist not in self.catalog.codelists:
            self.errors.append(
                FieldError(f"{where}.codelist", "template.codelist_unknown", "需要数据标准中的代码表")
            )
    elif c.codelist:
        self.errors.append(FieldError(f"{where}.codelist", "template.codelist", "代码表只用于 code 类型"))
    out.codelist = c.codelist if ftype == FieldType.code else None
    out.gap = CField(
        c.code,
        c.label,
        ftype,
        required=c.required,
        validator=validator,
        codelist=out.codelist,
        max_length=c.max_length,
        precision=14,
        scale=c.scale,
    )
    return out, None
