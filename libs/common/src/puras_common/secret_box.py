"""Sealing project secrets under the operator's master key (X1).

A value is encrypted with AES-256-GCM under a master key from the operator's settings
(``PURAS_SECRETS_KEY``), a fresh 96-bit nonce each time, and ``project id + name`` as
associated data: a ciphertext copied to another project or another name does not open.
What is stored (in the event log, in the gateway's table) is the key's id and
``base64url(nonce || ciphertext || tag)``; the value exists in plaintext only in the
memory of the gateway (while it seals) and of a runner (while it starts a job).

Rotation: the new key becomes ``PURAS_SECRETS_KEY`` and the old one moves to
``PURAS_SECRETS_PREVIOUS_KEYS``; everything keeps opening (each ciphertext names its key)
while ``puras admin secrets rotate`` re-seals every secret under the new key, after which
the old key can be dropped.

A key is 32 random bytes, written as base64 (``puras admin secrets new-key`` or
``openssl rand -base64 32``). Its id is derived from it, so two settings cannot
disagree about which id a key has.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "KEY_BYTES",
    "Keyring",
    "MasterKey",
    "NoSecretsKey",
    "Sealed",
    "SecretUnreadable",
    "SecretsKeyInvalid",
    "generate_key",
    "parse_key",
]

KEY_BYTES: Final = 32
_NONCE_BYTES: Final = 12
_AAD_PREFIX: Final = b"puras-secret/v1\x00"
_ID_PREFIX: Final = b"puras-secrets-key-id/v1\x00"


class SecretsKeyInvalid(ValueError):
    """A configured key is not 32 bytes of base64 (the message never quotes the key)."""


class NoSecretsKey(RuntimeError):
    """No master key is configured: secrets can be neither sealed nor opened."""


class SecretUnreadable(RuntimeError):
    """A ciphertext does not open: its key is not configured, or it is not this
    project's and name's, or it was altered."""


@dataclass(frozen=True, slots=True)
class MasterKey:
    """One master key and the id derived from it."""

    key_id: str
    material: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Sealed:
    """A sealed value: what the event log and the gateway's table hold."""

    key_id: str
    ciphertext: str


def _b64decode(text: str) -> bytes:
    text = text.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise SecretsKeyInvalid("not base64") from None


def parse_key(text: str) -> MasterKey:
    """A master key from its base64 form (standard or URL-safe, padding optional)."""
    material = _b64decode(text)
    if len(material) != KEY_BYTES:
        raise SecretsKeyInvalid(
            f"a secrets key is {KEY_BYTES} random bytes in base64 (got {len(material)} bytes); "
            "make one with `puras admin secrets new-key` or `openssl rand -base64 32`"
        )
    key_id = hashlib.sha256(_ID_PREFIX + material).hexdigest()[:16]
    return MasterKey(key_id=key_id, material=material)


def generate_key() -> str:
    """A new random master key, in the form :func:`parse_key` reads."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def _aad(project_id: str, name: str) -> bytes:
    return _AAD_PREFIX + project_id.encode() + b"\x00" + name.encode()


class Keyring:
    """The current master key (sealing and opening) and previous ones (opening only)."""

    def __init__(self, current: MasterKey | None, previous: tuple[MasterKey, ...] = ()) -> None:
        self.current = current
        self._keys: dict[str, MasterKey] = {k.key_id: k for k in previous}
        if current is not None:
            self._keys[current.key_id] = current

    @classmethod
    def from_settings(cls, current: str, previous: str = "") -> Keyring:
        """From ``PURAS_SECRETS_KEY`` and the comma-separated
        ``PURAS_SECRETS_PREVIOUS_KEYS`` (empty: none)."""
        key = parse_key(current) if current.strip() else None
        olds = tuple(parse_key(p) for p in previous.split(",") if p.strip())
        if key is None and olds:
            raise SecretsKeyInvalid(
                "PURAS_SECRETS_PREVIOUS_KEYS is set without PURAS_SECRETS_KEY; set the "
                "current key too (previous keys only open what they sealed)"
            )
        return cls(key, olds)

    @property
    def configured(self) -> bool:
        return self.current is not None

    @property
    def key_ids(self) -> frozenset[str]:
        """Every key id this keyring opens."""
        return frozenset(self._keys)

    def seal(self, project_id: str, name: str, value: str) -> Sealed:
        """``value`` encrypted under the current key for this project and name."""
        if self.current is None:
            raise NoSecretsKey("no secrets key is configured (PURAS_SECRETS_KEY)")
        nonce = os.urandom(_NONCE_BYTES)
        body = AESGCM(self.current.material).encrypt(
            nonce, value.encode("utf-8"), _aad(project_id, name)
        )
        text = base64.urlsafe_b64encode(nonce + body).rstrip(b"=").decode()
        return Sealed(key_id=self.current.key_id, ciphertext=text)

    def open(self, project_id: str, name: str, sealed: Sealed) -> str:
        """The value of a sealed secret of this project and name."""
        key = self._keys.get(sealed.key_id)
        if key is None:
            if self.current is None:
                raise NoSecretsKey("no secrets key is configured (PURAS_SECRETS_KEY)")
            raise SecretUnreadable(
                f"secret {name!r} is sealed under key {sealed.key_id}, which is neither "
                "PURAS_SECRETS_KEY nor one of PURAS_SECRETS_PREVIOUS_KEYS"
            )
        try:
            raw = base64.urlsafe_b64decode(sealed.ciphertext + "=" * (-len(sealed.ciphertext) % 4))
            if len(raw) <= _NONCE_BYTES:
                raise ValueError("too short")
            plain = AESGCM(key.material).decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _aad(project_id, name)
            )
        except (InvalidTag, ValueError, binascii.Error):
            raise SecretUnreadable(
                f"secret {name!r} does not open under key {sealed.key_id} for this project"
            ) from None
        return plain.decode("utf-8")

    def needs_reseal(self, key_id: str) -> bool:
        """True for a ciphertext not under the current key (what a rotation re-seals)."""
        return self.current is not None and key_id != self.current.key_id
