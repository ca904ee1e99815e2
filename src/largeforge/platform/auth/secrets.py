"""Passwords (argon2id) and bearer tokens (random, stored as SHA-256).

Passwords are low-entropy, so they get a slow, salted hash. API keys and session tokens are 256-bit
random strings: a fast SHA-256 is enough to make a stolen table useless, and it lets every request
find its key in one indexed lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from largeforge.errors import InvalidInput

KEY_PREFIX = "lf_"
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise InvalidInput("password too short: use at least 8 characters")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_api_key() -> tuple[str, str]:
    """A fresh key ``lf_<prefix>_<secret>`` and its visible prefix ``lf_<prefix>``."""
    prefix = KEY_PREFIX + secrets.token_hex(4)
    return f"{prefix}_{secrets.token_urlsafe(32)}", prefix


def split_api_key(token: str) -> str | None:
    """The visible prefix of a well-formed key, else None."""
    size = len(KEY_PREFIX) + 8
    if not token.startswith(KEY_PREFIX) or len(token) <= size + 1 or token[size] != "_":
        return None
    return token[:size]


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same_hash(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(sha256_hex(token), stored_hash)


__all__ = [
    "hash_password",
    "new_api_key",
    "new_token",
    "same_hash",
    "sha256_hex",
    "split_api_key",
    "verify_password",
]
