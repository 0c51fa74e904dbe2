"""Mask rules compiled to SQL expressions: masking happens in PostgreSQL, before any value leaves it.

Every function takes a text expression and returns a text expression. A masked value must not tell
whether there is one: where a rule shows nothing of the value (`full`), NULL masks to the same text
as a value. Partial rules show a part of the value, so a value shows as present by nature; NULL stays
NULL there (docs/access.md).
"""

from typing import Any

from sqlalchemy import Text, case, cast, func, literal
from sqlalchemy.sql.elements import ColumnElement

from app.catalog.model import MaskRule

FULL = "****"


def _id_card(v: ColumnElement[Any]) -> ColumnElement[Any]:
    # 500118********1234: keep the 6-digit region and the last 4 characters.
    return func.concat(
        func.left(v, 6), func.repeat("*", func.greatest(func.length(v) - 10, 0)), func.right(v, 4)
    )


def _phone(v: ColumnElement[Any]) -> ColumnElement[Any]:
    # 138****5678; short numbers are masked whole rather than half-revealed.
    return case(
        (func.length(v) >= 7, func.concat(func.left(v, 3), "****", func.right(v, 4))), else_=literal(FULL)
    )


def _name(v: ColumnElement[Any]) -> ColumnElement[Any]:
    # 张** keeps the surname only.
    return func.concat(func.left(v, 1), func.repeat("*", func.greatest(func.length(v) - 1, 1)))


def _address(v: ColumnElement[Any]) -> ColumnElement[Any]:
    # Cut after the village / community segment: 重庆市永川区胜利路街道新民社区***. strpos, not a
    # regex: this runs on every row of every masked page.
    ends = [func.nullif(func.strpos(v, token), 0) + (len(token) - 1) for token in ("村", "社区", "居委会")]
    cut = func.least(*ends)  # least() skips NULLs: the first segment that occurs
    return case(
        (cut.is_not(None), func.concat(func.left(v, cut), "***")), else_=func.concat(func.left(v, 6), "***")
    )


def _certificate(v: ColumnElement[Any]) -> ColumnElement[Any]:
    # 500118********1234****: the embedded ID masked as the ID itself is, then a fixed tail so neither
    # the type and level digits nor the certificate's length show.
    return func.concat(func.left(v, 6), "********", func.substr(v, 15, 4), "****")


def _year(v: ColumnElement[Any]) -> ColumnElement[Any]:
    # ISO dates and timestamps start with the year.
    return func.left(v, 4)


_RULES = {
    MaskRule.id_card: _id_card,
    MaskRule.phone: _phone,
    MaskRule.name: _name,
    MaskRule.address: _address,
    MaskRule.year: _year,
    MaskRule.certificate: _certificate,
}


def mask_text(rule: MaskRule, value: ColumnElement[Any]) -> ColumnElement[Any]:
    """Mask a text expression. `full` is **** whether or not there is a value (a NULL shown as NULL
    would tell who is disabled); partial rules keep NULL as NULL, as their output shows presence anyway."""
    fn = _RULES.get(rule)
    if fn is None:
        return literal(FULL, Text)
    return case((value.is_(None), None), else_=fn(value))


def mask_column(rule: MaskRule, column: ColumnElement[Any]) -> ColumnElement[Any]:
    return mask_text(rule, cast(column, Text))
