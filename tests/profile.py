"""Property-test sizes: a quick profile for `make test`, a long one for `make test-long`.

`ONETABLE_TEST_PROFILE=long` (set by `make test-long`) switches every property test to its long count,
so the long run reaches its total (>= 10,000 examples across REST, GraphQL and reports) without
slowing the everyday suite.
"""

import os

LONG = os.environ.get("ONETABLE_TEST_PROFILE", "quick") == "long"


def examples(quick: int, long: int) -> int:
    """How many hypothesis examples a property test runs under the current profile."""
    return long if LONG else quick


# Examples run per suite in this session (every call of a property test's body, shrinking included);
# tests/conftest.py prints the total at the end of the run.
TALLY: dict[str, int] = {}


def tally(suite: str) -> None:
    """Count one example of a property test: suite is rest, graphql or reports."""
    TALLY[suite] = TALLY.get(suite, 0) + 1
