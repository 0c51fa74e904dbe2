"""Report template DSL: the declarative JSON a department writes, as pydantic models.

This module checks shape only (types, names, enums). Whether a path exists in the catalogue, a
formula parses, or the department may read a field is the compiler's job (app/report/compiler.py),
so every semantic error can name its path in the template. The JSON Schema published in
schemas/report_template.schema.json is generated from these models (tests fail on drift).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from app.errors import FieldError, invalid

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "report_template.schema.json"

Code = Annotated[
    str, Field(pattern=r"^[a-z][a-z0-9_]{0,40}$", description="列代码：小写字母开头，字母数字下划线")
]
Path_ = Annotated[
    str,
    Field(
        pattern=r"^(@[a-z][a-z0-9_]*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){0,4}(\.@[a-z][a-z0-9_]*)?)$",
        max_length=200,
        description="字段路径：字段、经关联/专题台账到达的字段（residence.floor_area），或关联的属性"
        "（household.@relation_to_head；exists 条件的 where 里单写 @role 指进入该记录的关联）",
    ),
]
Label = Annotated[str, Field(min_length=1, max_length=60, description="中文列名")]
Scalar = str | int | float | bool | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Compare = Literal["eq", "ne", "gt", "gte", "lt", "lte"]


class Condition(_Strict):
    """One filter condition; all conditions of a list are AND-ed.

    exists / not_exists / count range over the records `path` reaches (relations and extensions only, one-
    to-many allowed: `residents`, `residence.residents`), each counted once, those matching `where` (paths
    from the far record; `@code` an attribute of the link that reached it). count compares their number
    with `value` by `compare`."""

    path: Path_
    op: Literal[
        "eq", "ne", "in", "gt", "gte", "lt", "lte", "is_null", "prefix", "exists", "not_exists", "count"
    ] = "eq"
    value: Scalar | list[str | int | float] = None
    where: list[Condition] = Field(
        default_factory=list, max_length=10, description="exists / not_exists / count：关联记录须满足的条件"
    )
    compare: Compare | None = Field(None, description="count：记录数与 value 的比较方式")


class FieldColumn(_Strict):
    kind: Literal["field"]
    code: Code
    label: Label | None = Field(None, description="缺省取数据标准中的中文名")
    path: Path_


class FormulaColumn(_Strict):
    kind: Literal["formula"]
    code: Code
    label: Label
    expr: str = Field(min_length=1, max_length=300, description="四则运算：+ - * / 括号、数字、其他列代码")
    scale: int = Field(2, ge=0, le=6, description="结果保留小数位")


class RatioColumn(_Strict):
    kind: Literal["ratio"]
    code: Code
    label: Label
    numerator: Code
    denominator: Code
    percent: bool = Field(True, description="按百分比表示（×100）")
    scale: int = Field(2, ge=0, le=6)


class AggregateColumn(_Strict):
    kind: Literal["aggregate"]
    code: Code
    label: Label
    fn: Literal["count", "sum", "avg", "min", "max", "count_distinct"]
    path: Path_ | None = Field(None, description="count 可省略（计行数）；其余必填")
    filter: list[Condition] = Field(default_factory=list, max_length=10, description="本列专用筛选条件")


class GapColumn(_Strict):
    """A cell the township types by hand; optionally written back into a ledger field."""

    kind: Literal["gap"]
    code: Code
    label: Label
    type: Literal["text", "integer", "decimal", "date", "boolean", "code"] | None = Field(
        None, description="写回字段时可省略（取数据标准的类型与校验）"
    )
    required: bool = False
    help: str | None = Field(None, max_length=300, description="填报说明")
    min: float | None = None
    max: float | None = None
    pattern: str | None = Field(None, max_length=200, description="文本正则")
    validator: Literal["id_card", "uscc", "phone", "division_code", "parcel_code"] | None = None
    codelist: str | None = Field(None, max_length=41)
    max_length: int | None = Field(None, ge=1, le=2000)
    scale: int = Field(2, ge=0, le=6)
    write_back: Path_ | None = Field(None, description="提交时写回的台账字段路径；下期自动预填")
    required_when: str | None = Field(
        None,
        min_length=1,
        max_length=300,
        description="条件必填：同一行其他列满足该条件时本列必填，"
        "如 dibao_households > 0（比较 < <= > >= = !=，and / or / not）",
    )

    @model_validator(mode="after")
    def _typed(self) -> GapColumn:
        if self.type is None and self.write_back is None:
            raise ValueError("gap column needs a type unless it writes back to a ledger field")
        return self


class Rule(_Strict):
    """A check across the columns of one row, e.g. `visited <= households`; checked when cells are saved
    or uploaded and at submit, each failure naming the row, the column and this message."""

    expr: str = Field(
        min_length=1,
        max_length=300,
        description="条件：比较（< <= > >= = !=）、and / or / not、四则运算、数字与列代码；空单元格不触发",
    )
    message: str = Field(min_length=1, max_length=200, description="不满足时给填报人看的中文提示")
    column: Code | None = Field(None, description="出错时标注的列；缺省为条件中第一个空缺列")


Column = Annotated[
    FieldColumn | FormulaColumn | RatioColumn | AggregateColumn | GapColumn, Field(discriminator="kind")
]


class Rows(_Strict):
    """Aggregate rows: the villages (or townships) of the area, or the values of a code-list field."""

    by: Literal["village", "township", "code"]
    path: Path_ | None = Field(None, description="by=code 时：代码表字段路径")


class Deadline(_Strict):
    days_after_period_end: int | None = Field(None, ge=0, le=366)
    days_after_dispatch: int | None = Field(None, ge=0, le=366)

    @model_validator(mode="after")
    def _one(self) -> Deadline:
        if (self.days_after_period_end is None) == (self.days_after_dispatch is None):
            raise ValueError("give exactly one of days_after_period_end, days_after_dispatch")
        return self


class TemplateSpec(_Strict):
    """The body of POST /report-templates and of every new version."""

    code: Code = Field(description="模板代码，部门内唯一")
    name: str = Field(min_length=1, max_length=100, description="报表名称")
    kind: Literal["list", "aggregate"]
    ledger: Code = Field(description="行所在台账（list）或被统计的台账（aggregate）")
    filter: list[Condition] = Field(default_factory=list, max_length=20)
    rows: Rows | None = Field(None, description="aggregate 模板必填")
    columns: list[Column] = Field(min_length=1, max_length=120)
    period: Literal["monthly", "quarterly", "yearly", "once"] = "monthly"
    deadline: Deadline = Field(default_factory=lambda: Deadline(days_after_dispatch=10))
    instructions: str | None = Field(None, max_length=2000, description="填报说明")
    rules: list[Rule] = Field(default_factory=list, max_length=50, description="同一行内跨列校验规则")

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"$id": "https://onetable.example/schemas/report_template"}
    )

    @model_validator(mode="after")
    def _shape(self) -> TemplateSpec:
        if (self.kind == "aggregate") != (self.rows is not None):
            raise ValueError("rows is required for aggregate templates and not allowed for list templates")
        return self

    @property
    def gap_columns(self) -> list[GapColumn]:
        return [c for c in self.columns if isinstance(c, GapColumn)]

    @property
    def pull_only(self) -> bool:
        return not self.gap_columns


_KINDS = {"field", "formula", "ratio", "aggregate", "gap"}


def _loc(loc: tuple) -> str:
    # Drop the discriminator tag pydantic inserts (columns.2.gap.type -> columns.2.type).
    parts = [str(p) for i, p in enumerate(loc) if not (p in _KINDS and i > 0 and isinstance(loc[i - 1], int))]
    return ".".join(["body", *parts])


def parse_spec(raw: Any) -> TemplateSpec:
    """Validate a template body; a problem+json naming every bad path (values never echoed)."""
    try:
        return TemplateSpec.model_validate(raw)
    except ValidationError as exc:
        errors = [
            FieldError(_loc(tuple(e["loc"])), f"template.{e['type']}", _message(e)) for e in exc.errors()
        ]
        raise invalid(errors, "报表模板格式有误") from None


def _message(e: Mapping[str, Any]) -> str:
    t = e["type"]
    if t == "missing":
        return "缺少必填项"
    if t == "extra_forbidden":
        return "不允许的属性"
    if t in ("literal_error", "union_tag_invalid", "union_tag_not_found"):
        return "取值不在允许范围内"
    if t == "value_error":
        return "取值组合不正确：" + str(e.get("ctx", {}).get("error", ""))[:120]
    if t == "string_pattern_mismatch":
        return "格式不正确"
    return "类型或格式不正确"


def json_schema() -> dict:
    schema = TypeAdapter(TemplateSpec).json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "一表通报表模板 Report template"
    return schema


def render_schema() -> str:
    return json.dumps(json_schema(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write_schema(path: Path = SCHEMA_FILE) -> None:
    path.write_text(render_schema(), encoding="utf-8", newline="\n")


__all__ = [
    "AggregateColumn",
    "Condition",
    "Deadline",
    "FieldColumn",
    "FormulaColumn",
    "GapColumn",
    "RatioColumn",
    "Rows",
    "Rule",
    "TemplateSpec",
    "json_schema",
    "parse_spec",
    "render_schema",
    "write_schema",
]
