"""Division-code arithmetic: levels and subtree prefixes of 12-digit (and 15-digit grid) codes."""

# Lengths of the code prefix at each level: province, city, county, township, village, grid.
LEVEL_LENGTHS = (2, 4, 6, 9, 12, 15)


def region_level(code: str) -> int:
    """1..6: the deepest level whose digits are not all zero."""
    level = 1
    start = 0
    for i, end in enumerate(LEVEL_LENGTHS):
        if end > len(code):
            break
        if code[start:end].strip("0"):
            level = i + 1
        start = end
    return level


def region_prefix(code: str) -> str:
    """The LIKE prefix that selects a region's subtree: 500118101000 -> 500118101."""
    return code[: LEVEL_LENGTHS[region_level(code) - 1]]


def township_of(code: str) -> str:
    """The 12-digit code of the township containing a village or grid code."""
    return code[:9] + "000"
