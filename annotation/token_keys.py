"""An API token's key and the digest it is stored under: the one definition of both.

The database keeps only ``key_digest(key)`` and the key's first ``PREFIX_LENGTH`` characters;
the key itself is shown once, when it is issued. ``annotation/sql/token_digest.sql`` computes the
same digest inside PostgreSQL for the vote path (``tests/annotation/test_api_tokens.py`` checks
that the two agree).
"""

import hashlib
import secrets

PREFIX_LENGTH = 8


def new_key() -> str:
    """A fresh key: 40 URL-safe characters (240 random bits)."""
    return secrets.token_urlsafe(30)


def key_digest(key: str) -> str:
    """SHA-256 of the key's UTF-8 bytes, as 64 lowercase hex digits."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH]
