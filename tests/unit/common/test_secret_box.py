"""Sealing project secrets (X1): AES-GCM under the master key, bound to project and name;
key ids, previous keys, and refusals that never quote a key or a value."""

from __future__ import annotations

import base64

import pytest

from puras_common.secret_box import (
    Keyring,
    NoSecretsKey,
    Sealed,
    SecretsKeyInvalid,
    SecretUnreadable,
    generate_key,
    parse_key,
)

K1 = generate_key()
K2 = generate_key()
VALUE = "sk-live-0123456789abcdef"


def test_a_value_opens_again_under_its_project_and_name() -> None:
    ring = Keyring.from_settings(K1)
    sealed = ring.seal("p1", "API_KEY", VALUE)
    assert sealed.key_id == parse_key(K1).key_id
    assert VALUE not in sealed.ciphertext
    assert VALUE.encode() not in base64.urlsafe_b64decode(sealed.ciphertext + "==")
    assert ring.open("p1", "API_KEY", sealed) == VALUE


def test_each_seal_is_new_ciphertext() -> None:
    ring = Keyring.from_settings(K1)
    assert ring.seal("p1", "A", VALUE).ciphertext != ring.seal("p1", "A", VALUE).ciphertext


@pytest.mark.parametrize(("project", "name"), [("p2", "API_KEY"), ("p1", "OTHER")])
def test_a_ciphertext_moved_to_another_project_or_name_does_not_open(
    project: str, name: str
) -> None:
    ring = Keyring.from_settings(K1)
    sealed = ring.seal("p1", "API_KEY", VALUE)
    with pytest.raises(SecretUnreadable) as err:
        ring.open(project, name, sealed)
    assert VALUE not in str(err.value)


def test_an_altered_ciphertext_does_not_open() -> None:
    ring = Keyring.from_settings(K1)
    sealed = ring.seal("p1", "A", VALUE)
    raw = bytearray(base64.urlsafe_b64decode(sealed.ciphertext + "=="))
    raw[-1] ^= 1
    bad = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(SecretUnreadable):
        ring.open("p1", "A", Sealed(sealed.key_id, bad))
    with pytest.raises(SecretUnreadable):
        ring.open("p1", "A", Sealed(sealed.key_id, "AAAA"))


def test_previous_keys_open_what_they_sealed_and_only_the_current_one_seals() -> None:
    old = Keyring.from_settings(K1)
    sealed = old.seal("p1", "A", VALUE)
    rotated = Keyring.from_settings(K2, f"{K1}, ")
    assert rotated.open("p1", "A", sealed) == VALUE
    assert rotated.needs_reseal(sealed.key_id)
    again = rotated.seal("p1", "A", VALUE)
    assert again.key_id == parse_key(K2).key_id
    assert not rotated.needs_reseal(again.key_id)
    assert rotated.key_ids == {parse_key(K1).key_id, parse_key(K2).key_id}
    # Once the old key is dropped, what it sealed no longer opens, and says which key.
    with pytest.raises(SecretUnreadable) as err:
        Keyring.from_settings(K2).open("p1", "A", sealed)
    assert sealed.key_id in str(err.value)


def test_without_a_key_nothing_is_sealed_or_opened() -> None:
    ring = Keyring.from_settings("")
    assert not ring.configured
    with pytest.raises(NoSecretsKey):
        ring.seal("p1", "A", VALUE)
    with pytest.raises(NoSecretsKey):
        ring.open("p1", "A", Keyring.from_settings(K1).seal("p1", "A", VALUE))


def test_url_safe_and_unpadded_keys_are_the_same_key() -> None:
    raw = base64.b64decode(K1)
    url = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert parse_key(url).key_id == parse_key(K1).key_id


@pytest.mark.parametrize(
    "text", ["not base64 !!", base64.b64encode(b"short").decode(), "c2VjcmV0" * 3]
)
def test_a_malformed_key_is_refused_without_quoting_it(text: str) -> None:
    with pytest.raises(SecretsKeyInvalid) as err:
        parse_key(text)
    assert text not in str(err.value)


def test_previous_keys_without_a_current_one_are_refused() -> None:
    with pytest.raises(SecretsKeyInvalid, match="PURAS_SECRETS_KEY"):
        Keyring.from_settings("", K1)


def test_a_key_never_shows_in_its_repr() -> None:
    key = parse_key(K1)
    assert K1 not in repr(key)
    assert repr(base64.b64decode(K1)) not in repr(key)
