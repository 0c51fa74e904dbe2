"""Request and response models of catalogue admission (/api/v1/catalog/proposals)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Ident = Annotated[
    str, Field(pattern=r"^[a-z][a-z0-9_]{0,40}$", description="代码：小写字母开头，字母数字下划线")
]
Label = Annotated[str, Field(min_length=1, max_length=60, description="中文名称")]
CodeValue = Annotated[str, Field(pattern=r"^[0-9A-Za-z_]{1,20}$")]
CodeLabel = Annotated[str, Field(min_length=1, max_length=60)]
Frequency = Literal["realtime", "daily", "weekly", "monthly", "quarterly", "yearly", "on_change"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldIn(_In):
    code: Ident
    label: Label
    # Admitted items are added to tables that already hold rows: no required, unique, reference or validator.
    type: Literal["text", "integer", "decimal", "date", "datetime", "boolean", "code"]
    codelist: Ident | None = Field(None, description="代码型数据项的代码表（已有的，或本申请新增的）")
    max_length: int | None = Field(None, ge=1, le=4000, description="文本最大长度")
    precision: int = Field(14, ge=1, le=30)
    scale: int = Field(2, ge=0, le=10)
    sensitivity: Literal["public", "internal", "sensitive", "secret"] = "internal"
    mask: Literal["none", "id_card", "phone", "name", "address", "full", "year", "certificate"] = "none"
    owner: Ident | None = Field(None, description="数据所有部门；缺省为申请部门")
    frequency: Frequency = "on_change"
    source: str | None = Field(
        None,
        pattern=r"^(city_platform|township|department:[a-z][a-z0-9_]*)$",
        description="数据来源；缺省为所有部门的业务系统",
    )
    description: str | None = Field(None, max_length=200)


class CodeListIn(_In):
    code: Ident
    label: Label
    standard: str | None = Field(None, max_length=60, description="依据的标准，如 JGJ 125-2016")
    values: dict[CodeValue, CodeLabel] = Field(min_length=1, max_length=200, description="代码 -> 中文名称")


class ExtensionIn(_In):
    label: Label
    parent: Ident = Field(description="所扩展的基础台账，如 person、house")
    cardinality: Literal["one", "many"] = "one"
    description: str | None = Field(None, max_length=200)


class ProposalIn(_In):
    kind: Literal["fields", "extension"] = Field(
        "fields", description="fields：向已有台账增加数据项；extension：新建专题台账"
    )
    ledger: Ident = Field(description="增加数据项的台账；新建专题台账时为新台账代码")
    extension: ExtensionIn | None = Field(None, description="新建专题台账时必填")
    fields: list[FieldIn] = Field(min_length=1, max_length=30)
    codelists: list[CodeListIn] = Field(default_factory=list, max_length=5, description="本申请新增的代码表")
    reason: str = Field(min_length=1, max_length=500, description="申请理由（用途、依据）")
    not_duplicate_reason: str | None = Field(
        None, min_length=1, max_length=500, description="查重发现疑似已有数据项时，确认不是重复并说明理由"
    )


class DecisionIn(_In):
    comment: str | None = Field(None, max_length=500, description="审批意见；不予准入时必填")


class CheckIn(_In):
    labels: list[Label] = Field(min_length=1, max_length=30)


class Candidate(BaseModel):
    ledger: str
    ledger_label: str
    field: str
    label: str
    score: int = Field(description="相似度 0-100（按含义归一后比较）")
    owner: str | None


class LabelCandidates(BaseModel):
    label: str
    candidates: list[Candidate]


class CheckOut(BaseModel):
    items: list[LabelCandidates]


class ProposalOut(BaseModel):
    id: int
    kind: str
    ledger: str
    extension: dict[str, Any] | None
    fields: list[dict[str, Any]]
    codelists: list[dict[str, Any]]
    reason: str
    candidates: list[dict[str, Any]] = Field(description="提交时的查重结果")
    not_duplicate_reason: str | None
    department_code: str | None
    state: str = Field(description="proposed / approved / rejected")
    proposed_by: str
    proposed_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    comment: str | None
    applied_version: int | None = Field(description="准入后的数据目录版本")


class ProposalList(BaseModel):
    items: list[ProposalOut]


class VersionOut(BaseModel):
    version: int
    stamp: str
