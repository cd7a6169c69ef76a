"""Keys derived from the app's secret, one per purpose, and the Fernet boxes built on them.

One way to encrypt something at rest or in a page: ``fernet_for(secret_key, purpose)`` derives a 256-bit key with
HKDF-SHA256 from the secret key and a purpose label (so the survey's page state and a stored TOTP secret never
share a key), and returns a Fernet (AES-128-CBC with HMAC-SHA256, from the `cryptography` library). Changing the
secret key makes everything encrypted under the old one unreadable: survey pages start over, and two-factor
enrolments must be reset (README, Security).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


@lru_cache(maxsize=16)
def derived_key(secret_key: str, purpose: bytes) -> bytes:
    """32 bytes derived from the secret key for one purpose (HKDF-SHA256, the purpose as its info)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret_key.encode())


@lru_cache(maxsize=16)
def fernet_for(secret_key: str, purpose: bytes) -> Fernet:
    """A Fernet under the key derived for purpose."""
    return Fernet(base64.urlsafe_b64encode(derived_key(secret_key, purpose)))


def keyed_digest(secret_key: str, purpose: bytes, value: str) -> str:
    """HMAC-SHA256 hex of value under the key derived for purpose (a hash nobody without the key can reverse)."""
    return hmac.new(derived_key(secret_key, purpose), value.encode(), hashlib.sha256).hexdigest()
