"""scripts/coverage_floor.py: the floor fails a fall and an unrecorded rise, and is only ever raised."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("coverage_floor", ROOT / "scripts" / "coverage_floor.py")
assert _spec is not None and _spec.loader is not None
floor_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(floor_mod)


def test_the_committed_floor_is_a_percentage():
    assert 0 < floor_mod.read_floor() <= 100


def test_a_total_below_the_floor_fails_and_one_at_it_passes():
    assert "below the floor" in floor_mod.verdict(71.9, 72.0)
    assert floor_mod.verdict(72.0, 72.0) is None
    assert floor_mod.verdict(72.0 + floor_mod.RAISE_AFTER, 72.0) is None


def test_a_rise_past_the_margin_fails_until_the_floor_is_raised():
    total = 72.0 + floor_mod.RAISE_AFTER + 0.01
    assert "raise it" in floor_mod.verdict(total, 72.0)
    new = floor_mod.raised_floor(total, 72.0)
    assert new is not None and 72.0 < new <= total
    assert floor_mod.verdict(total, new) is None


def test_the_floor_is_never_lowered():
    assert floor_mod.raised_floor(72.3, 72.0) is None  # within the noise kept below the total
    assert floor_mod.raised_floor(50.0, 72.0) is None


def test_write_and_read_round_trip(tmp_path):
    path = tmp_path / "floor.txt"
    floor_mod.write_floor(73.4, path)
    assert floor_mod.read_floor(path) == 73.4
    assert path.read_text(encoding="utf-8").startswith("#")
