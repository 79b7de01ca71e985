from __future__ import annotations

from puras_common.auth import generate_key, hash_secret, parse_key, tokens_equal, verify_secret


def test_generated_key_parses_back_and_verifies() -> None:
    k = generate_key()
    assert k.key.startswith("puras_live_")
    parsed = parse_key(k.key)
    assert parsed is not None
    assert parsed.prefix == k.prefix
    assert verify_secret(parsed.secret, k.secret_sha256)
    assert not verify_secret(parsed.secret + "x", k.secret_sha256)
    assert hash_secret(parsed.secret) == k.secret_sha256
    assert parsed.secret not in k.secret_sha256


def test_keys_without_the_dot_or_prefix_are_refused() -> None:
    k = generate_key()
    assert parse_key(k.key.replace(".", "")) is None
    assert parse_key(k.key.replace("puras_live_", "")) is None
    assert parse_key("") is None


def test_token_comparison() -> None:
    assert tokens_equal("abc", "abc")
    assert not tokens_equal("abc", "abd")
