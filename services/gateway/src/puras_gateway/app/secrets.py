"""Project secrets (X1): list by name, set (create or overwrite), delete; the master-key
rotation that re-seals every secret under the current key.

A value is sealed here, before it is recorded (:mod:`puras_common.secret_box`): the
event log and the ``secrets`` table only ever see ciphertext, and no answer, error or
log line of this module holds a value. Bodies are parsed here rather than by the shared
JSON parser, whose messages may quote the body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from puras_common.bus.client import ConcurrencyConflict
from puras_common.events.ids import secret_deleted_id, secret_set_id
from puras_common.events.subjects import AGG_SECRET
from puras_common.events.types import SecretDeleted, SecretSet
from puras_common.ids import new_id
from puras_common.logging import get_logger
from puras_common.secret_box import Keyring, NoSecretsKey, Sealed, SecretUnreadable
from puras_common.secret_names import MAX_VALUE_BYTES, name_problem, value_problem
from puras_gateway.app.ports import EventLog, ProjectionWatch, SecretStore, StoredSecret
from puras_gateway.domain.errors import ApiError

__all__ = ["MAX_SECRET_BODY_BYTES", "SecretsService", "parse_secret_body"]

log = get_logger(__name__)

MAX_SECRET_BODY_BYTES = MAX_VALUE_BYTES * 6 + 1024
"""The largest ``PUT`` body read: a 64 KiB value fully JSON-escaped (``\\uXXXX``) fits."""

PROJECTION = "secrets"


class _Body(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    value: str


def parse_secret_body(raw: bytes) -> str:
    """The value of ``{"value": "<non-empty string>"}``; every refusal says what to fix
    without quoting the body (it is the secret)."""
    if not raw.strip():
        raise ApiError.bad_request(
            'request body is empty: send {"value": "<the secret>"}', code="invalid_body"
        )
    try:
        body = msgspec.json.decode(raw, type=_Body)
    except msgspec.ValidationError:
        raise ApiError.bad_request(
            'send a JSON object with one field, {"value": "<the secret>"}, the value a '
            "non-empty string",
            code="invalid_body",
        ) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise ApiError.bad_request(
            'the body is not valid JSON: send {"value": "<the secret>"}', code="invalid_json"
        ) from None
    if len(body.value.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES:
        raise ApiError(
            413,
            "secret_too_large",
            f"`value` is larger than {MAX_VALUE_BYTES // 1024} KiB; keep files in the drive",
        )
    problem = value_problem(body.value)
    if problem is not None:
        raise ApiError.bad_request(problem, code="invalid_secret_value")
    return body.value


def check_name(name: str) -> str:
    problem = name_problem(name)
    if problem is not None:
        raise ApiError.bad_request(problem, code="invalid_secret_name")
    return name


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def secret_out(row: StoredSecret) -> dict[str, Any]:
    """What the API shows of a secret: its name and times, never its value."""
    return {
        "name": row.name,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


class SecretsService:
    def __init__(
        self,
        *,
        bus: EventLog,
        store: SecretStore | None,
        watcher: ProjectionWatch,
        keyring: Keyring,
        wait_s: float,
    ) -> None:
        self._bus = bus
        self._store = store
        self._watcher = watcher
        self._keyring = keyring
        self._wait = wait_s

    def _table(self) -> SecretStore:
        if self._store is None:
            raise ApiError.unavailable("secrets are not served by this gateway")
        return self._store

    async def list(self, project_id: str) -> dict[str, Any]:
        rows = await self._table().of_project(project_id)
        return {"secrets": [secret_out(r) for r in rows]}

    async def set(self, project_id: str, name: str, raw_body: bytes) -> dict[str, Any]:
        """Create or overwrite ``name`` (X1); answers once the list shows it."""
        check_name(name)
        value = parse_secret_body(raw_body)
        if not self._keyring.configured:
            raise ApiError(
                503,
                "secrets_unavailable",
                "this deployment has no secrets master key (PURAS_SECRETS_KEY), so secrets "
                "cannot be stored; ask the operator to configure one (docs/security.md)",
            )
        sealed = self._keyring.seal(project_id, name, value)
        del value
        pub = await self._bus.append(
            SecretSet(name=name, key_id=sealed.key_id, ciphertext=sealed.ciphertext),
            project_id=project_id,
            aggregate=AGG_SECRET,
            aggregate_id=name,
            event_id=secret_set_id(name, new_id()),
        )
        await self._watcher.wait_for(PROJECTION, pub.seq, self._wait)
        row = await self._table().get(project_id, name)
        if row is None or row.last_seq < pub.seq:
            # Recorded, not projected yet within the bound: say what is known.
            return {"name": name}
        return secret_out(row)

    async def delete(self, project_id: str, name: str) -> dict[str, Any]:
        check_name(name)
        row = await self._table().get(project_id, name)
        if row is None:
            raise ApiError.not_found(
                f"no secret named {name!r} in this project (GET /v1/secrets lists them)",
                code="secret_not_found",
            )
        pub = await self._bus.append(
            SecretDeleted(name=name),
            project_id=project_id,
            aggregate=AGG_SECRET,
            aggregate_id=name,
            event_id=secret_deleted_id(name, new_id()),
        )
        await self._watcher.wait_for(PROJECTION, pub.seq, self._wait)
        return {"name": name, "deleted": True}

    async def rotate(self) -> dict[str, Any]:
        """Re-seal under the current key every secret another key sealed.

        Each re-seal expects the secret's last event to be the one it read: a secret set
        or deleted meanwhile is left alone (a new set is sealed under the current key
        already). A secret no configured key opens is reported, not touched: the key
        that sealed it must stay in ``PURAS_SECRETS_PREVIOUS_KEYS`` until it is found.
        """
        current = self._keyring.current
        if current is None:
            raise ApiError(
                503,
                "secrets_unavailable",
                "no secrets master key (PURAS_SECRETS_KEY) is configured on this gateway: "
                "set the new key there (and the old one in PURAS_SECRETS_PREVIOUS_KEYS)",
            )
        resealed = changed = 0
        unreadable: list[dict[str, str]] = []
        last = 0
        for row in await self._table().sealed_elsewhere(current.key_id):
            try:
                value = self._keyring.open(
                    row.project_id, row.name, Sealed(key_id=row.key_id, ciphertext=row.ciphertext)
                )
            except (SecretUnreadable, NoSecretsKey):
                unreadable.append(
                    {"project_id": row.project_id, "name": row.name, "key_id": row.key_id}
                )
                continue
            sealed = self._keyring.seal(row.project_id, row.name, value)
            del value
            try:
                pub = await self._bus.append(
                    SecretSet(
                        name=row.name,
                        key_id=sealed.key_id,
                        ciphertext=sealed.ciphertext,
                        rotated=True,
                    ),
                    project_id=row.project_id,
                    aggregate=AGG_SECRET,
                    aggregate_id=row.name,
                    event_id=secret_set_id(row.name, new_id()),
                    expected_last_subject_seq=row.last_seq,
                )
            except ConcurrencyConflict:
                changed += 1
                continue
            resealed += 1
            last = max(last, pub.seq)
        if last:
            await self._watcher.wait_for(PROJECTION, last, self._wait)
        log.info(
            "secrets re-sealed",
            key_id=current.key_id,
            resealed=resealed,
            changed_meanwhile=changed,
            unreadable=len(unreadable),
        )
        return {
            "key_id": current.key_id,
            "resealed": resealed,
            "changed_meanwhile": changed,
            "unreadable": unreadable,
        }
