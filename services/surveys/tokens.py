"""Survey link tokens: 256 random bits, shown once in the link, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

TOKEN_BYTES = 32  # 256 bits
_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # urlsafe base64 of 32 bytes, unpadded


def new_token() -> tuple[str, str]:
    """A fresh token and the hash to store: (raw for the link, sha256 hex for the database)."""
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    return raw, token_hash(raw)


def token_hash(raw: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(raw.encode("ascii", "replace")).hexdigest()


def looks_like_token(raw: str) -> bool:
    """Cheap shape check before touching the database (tampered or truncated links fail here)."""
    return bool(_SHAPE.match(raw))


def same_hash(a: str, b: str) -> bool:
    """Constant-time comparison of two stored hashes."""
    return hmac.compare_digest(a, b)
