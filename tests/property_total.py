"""Sum the `property examples: N (suite=n, …)` lines of the `make test-long` logs into one line, and
exit non-zero if any suite's pytest did. Usage: python -m tests.property_total var/test-long"""

from __future__ import annotations

import re
import sys
from pathlib import Path

LINE = re.compile(r"^property examples: \d+ \((?P<parts>[^;)]*)")


def main(folder: str) -> int:
    totals: dict[str, int] = {}
    failed = []
    for log in sorted(Path(folder).glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if m := LINE.match(line):
                for part in m["parts"].split(", "):
                    suite, n = part.split("=")
                    totals[suite] = totals.get(suite, 0) + int(n)
        rc = log.with_suffix(".rc")
        if not rc.exists() or rc.read_text().strip() != "0":
            failed.append(log.stem)
    parts = ", ".join(f"{k}={v}" for k, v in sorted(totals.items()))
    print(f"property examples: {sum(totals.values())} ({parts}; profile long)")
    if failed:
        print(f"failed: {', '.join(failed)} (see var/test-long/<suite>.log)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
