# The `world` fixture lives in tests/world.py (loaded as a plugin by tests/conftest.py).
from tests.world import VILLAGE_A, VILLAGE_B, A, B, World  # noqa: F401
