"""The JSON response class: orjson, with decimals as JSON numbers (areas, amounts) rather than strings."""

from decimal import Decimal
from typing import Any

import orjson
from starlette.responses import JSONResponse


def _default(o: Any) -> Any:
    if isinstance(o, Decimal):
        # Catalogue decimals have at most 16 significant digits: a double keeps them exactly in JSON.
        return float(o)
    raise TypeError(type(o).__name__)


def dumps(content: Any) -> bytes:
    return orjson.dumps(content, default=_default, option=orjson.OPT_NON_STR_KEYS)


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content)


class ProblemJSON(JSON):
    media_type = "application/problem+json"
