"""Access levels, ordered: each level includes the ones below it (write implies read)."""

from enum import IntEnum

from app.catalog.model import Sensitivity


class Level(IntEnum):
    hidden = 0
    masked = 1
    read = 2
    write = 3

    @classmethod
    def parse(cls, name: str) -> "Level":
        return cls[name]


# What a user gets on a field when no grant speaks about it. Service accounts get nothing by default.
DEFAULT_FOR_SENSITIVITY = {
    Sensitivity.public: Level.read,
    Sensitivity.internal: Level.read,
    Sensitivity.sensitive: Level.masked,
    Sensitivity.secret: Level.hidden,
}
