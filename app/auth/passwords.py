"""Password and API-key hashing. Passwords: argon2 (pwdlib). API keys: high-entropy, so SHA-256 suffices."""

import hashlib
import secrets

from pwdlib import PasswordHash

_hasher = PasswordHash.recommended()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, hashed: str) -> bool:
    return _hasher.verify(password, hashed)


# A hash to verify against when the user does not exist, so timing does not reveal usernames.
DUMMY_HASH = hash_password("onetable-dummy-password")


def new_api_key() -> tuple[str, str, str]:
    """(full key shown once, lookup prefix, stored hash). Format: ot_<prefix>_<secret>."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"ot_{prefix}_{secret}", prefix, hash_api_key(secret)


def hash_api_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
