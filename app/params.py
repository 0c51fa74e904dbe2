"""Shared query and path parameter types: every integer a caller sends is bounded to what PostgreSQL's
bigint holds, so a huge value is a 422 here and never a database error (a 500) later."""

from typing import Annotated

from fastapi import Path, Query

BIGINT_MAX = 2**63 - 1

PathId = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
QueryId = Annotated[int | None, Query(ge=1, le=BIGINT_MAX)]
Offset = Annotated[int, Query(ge=0, le=BIGINT_MAX, description="跳过的条数")]
