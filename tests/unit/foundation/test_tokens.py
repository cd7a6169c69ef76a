"""Survey tokens are 256-bit, unique, and only their hash is stored."""

from __future__ import annotations

from services.surveys.tokens import looks_like_token, new_token, token_hash


def test_tokens_are_256_bit_and_stored_hashed() -> None:
    raw, digest = new_token()
    assert len(raw) == 43
    assert looks_like_token(raw)
    assert digest == token_hash(raw) != raw
    assert len(digest) == 64


def test_tokens_do_not_repeat() -> None:
    assert len({new_token()[0] for _ in range(1000)}) == 1000


def test_tampered_or_truncated_tokens_fail_the_shape_check() -> None:
    raw, _ = new_token()
    assert not looks_like_token(raw[:-1])
    assert not looks_like_token(raw + "x")
    assert not looks_like_token(raw[:-1] + "!")
    assert not looks_like_token("")
