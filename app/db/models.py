"""Import every module that defines tables so Base.metadata is complete (Alembic, tests, create_app)."""

from app.access import (
    audit_models as _audit,  # noqa: F401
    models as _access,  # noqa: F401
)
from app.auth import models as _auth  # noqa: F401
from app.catalog.admission import models as _admission  # noqa: F401
from app.consolidation import models as _consolidation  # noqa: F401
from app.db.base import Base
from app.db.ledger_tables import tables
from app.dedupe import models as _dedupe  # noqa: F401
from app.imports import models as _imports  # noqa: F401
from app.org import models as _org  # noqa: F401
from app.push import models as _push  # noqa: F401
from app.report import models as _report  # noqa: F401

tables()
metadata = Base.metadata
