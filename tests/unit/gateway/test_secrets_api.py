"""Project secrets at the gateway (X1): what a name and a body may be, set / list /
delete over fakes, the event holding ciphertext only, no key (503), and the rotation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from puras_common.bus.client import ConcurrencyConflict, Published
from puras_common.events.base import Event
from puras_common.events.subjects import AGG_SECRET
from puras_common.events.types import SecretDeleted, SecretSet
from puras_common.secret_box import Keyring, Sealed, generate_key
from puras_common.secret_names import MAX_VALUE_BYTES
from puras_gateway.app.ports import StoredSecret
from puras_gateway.app.secrets import SecretsService, parse_secret_body
from puras_gateway.domain.errors import ApiError

P = "0a1b2c3d-0000-7000-8000-000000000001"
OTHER = "0a1b2c3d-0000-7000-8000-000000000002"
VALUE = "sk-test-0123456789abcdef"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Log:
    """The event log and, applied at once, the projection of its secret events."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Event, int | None]] = []
        self.rows: dict[tuple[str, str], StoredSecret] = {}
        self.conflict_on: set[str] = set()

    async def append(
        self,
        event: Event,
        *,
        project_id: str,
        aggregate: str,
        aggregate_id: str,
        event_id: str,
        expected_last_subject_seq: int | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> Published:
        assert aggregate == AGG_SECRET
        if aggregate_id in self.conflict_on:
            raise ConcurrencyConflict("wrong last sequence")
        self.events.append((project_id, event, expected_last_subject_seq))
        seq = len(self.events)
        key = (project_id, aggregate_id)
        if isinstance(event, SecretSet):
            old = self.rows.get(key)
            self.rows[key] = StoredSecret(
                project_id=project_id,
                name=event.name,
                key_id=event.key_id,
                ciphertext=event.ciphertext,
                created_at=old.created_at if old else T0,
                updated_at=T0,
                last_seq=seq,
            )
        elif isinstance(event, SecretDeleted):
            self.rows.pop(key, None)
        return Published(seq=seq, duplicate=False, subject=f"ev.{project_id}.secret.{aggregate_id}")

    async def last_subject_seq(self, subject: str) -> int:
        return 0

    # -- the store ---------------------------------------------------------------------

    async def of_project(self, project_id: str) -> list[StoredSecret]:
        return sorted(
            (r for r in self.rows.values() if r.project_id == project_id), key=lambda r: r.name
        )

    async def get(self, project_id: str, name: str) -> StoredSecret | None:
        return self.rows.get((project_id, name))

    async def sealed_elsewhere(self, key_id: str) -> list[StoredSecret]:
        return [r for r in self.rows.values() if r.key_id != key_id]


class Watcher:
    async def wait_for(self, name: str, seq: int, timeout: float) -> bool:
        assert name == "secrets"
        return True


def _service(log: Log, ring: Keyring) -> SecretsService:
    return SecretsService(bus=log, store=log, watcher=Watcher(), keyring=ring, wait_s=1.0)


def _body(value: Any) -> bytes:
    return json.dumps({"value": value}).encode()


@pytest.fixture
def ring() -> Keyring:
    return Keyring.from_settings(generate_key())


async def test_set_records_ciphertext_only_and_lists_the_name(ring: Keyring) -> None:
    log = Log()
    svc = _service(log, ring)
    out = await svc.set(P, "API_KEY", _body(VALUE))
    assert out == {
        "name": "API_KEY",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    ((project, event, _),) = log.events
    assert project == P
    assert isinstance(event, SecretSet)
    assert VALUE not in repr(event)
    assert ring.open(P, "API_KEY", Sealed(event.key_id, event.ciphertext)) == VALUE
    listed = await svc.list(P)
    assert listed == {"secrets": [out]}
    assert VALUE not in json.dumps(listed)
    assert await svc.list(OTHER) == {"secrets": []}


async def test_set_twice_overwrites(ring: Keyring) -> None:
    log = Log()
    svc = _service(log, ring)
    await svc.set(P, "A_KEY", _body("first-value"))
    await svc.set(P, "A_KEY", _body("second-value"))
    (row,) = await log.of_project(P)
    assert ring.open(P, "A_KEY", Sealed(row.key_id, row.ciphertext)) == "second-value"


async def test_delete_removes_and_a_missing_name_is_404(ring: Keyring) -> None:
    log = Log()
    svc = _service(log, ring)
    await svc.set(P, "A_KEY", _body(VALUE))
    with pytest.raises(ApiError) as err:
        await svc.delete(OTHER, "A_KEY")  # another project's name is not found
    assert err.value.status == 404
    assert err.value.code == "secret_not_found"
    assert await svc.delete(P, "A_KEY") == {"name": "A_KEY", "deleted": True}
    assert await svc.list(P) == {"secrets": []}
    with pytest.raises(ApiError) as again:
        await svc.delete(P, "A_KEY")
    assert again.value.status == 404


@pytest.mark.parametrize("name", ["api_key", "MY.KEY", "1KEY", "PURAS_JOB_TOKEN", "A-B"])
async def test_a_bad_name_is_400_and_nothing_is_recorded(ring: Keyring, name: str) -> None:
    log = Log()
    with pytest.raises(ApiError) as err:
        await _service(log, ring).set(P, name, _body(VALUE))
    assert err.value.status == 400
    assert err.value.code == "invalid_secret_name"
    assert VALUE not in err.value.message
    assert log.events == []


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{}",
        _body(""),
        _body(5),
        _body(None),
        json.dumps({"value": VALUE, "extra": 1}).encode(),
        b'{"value": "' + VALUE.encode() + b'"',  # not JSON: cut short
        b"\xff\xfe" + VALUE.encode(),
        _body(VALUE + "\x00"),
    ],
)
def test_a_bad_body_is_400_and_never_quotes_the_value(raw: bytes) -> None:
    with pytest.raises(ApiError) as err:
        parse_secret_body(raw)
    assert err.value.status == 400
    assert VALUE not in json.dumps(err.value.body())
    assert "value" in err.value.message


def test_a_value_over_64_kib_is_413() -> None:
    with pytest.raises(ApiError) as err:
        parse_secret_body(_body("v" * (MAX_VALUE_BYTES + 1)))
    assert err.value.status == 413
    assert parse_secret_body(_body("v" * MAX_VALUE_BYTES)) == "v" * MAX_VALUE_BYTES


async def test_without_a_master_key_set_is_503_and_list_still_works() -> None:
    log = Log()
    svc = _service(log, Keyring.from_settings(""))
    with pytest.raises(ApiError) as err:
        await svc.set(P, "A_KEY", _body(VALUE))
    assert err.value.status == 503
    assert err.value.code == "secrets_unavailable"
    assert "PURAS_SECRETS_KEY" in err.value.message
    assert await svc.list(P) == {"secrets": []}


async def test_rotation_reseals_what_old_keys_sealed(ring: Keyring) -> None:
    old_key, new_key = generate_key(), generate_key()
    log = Log()
    await _service(log, Keyring.from_settings(old_key)).set(P, "A_KEY", _body("value-a"))
    await _service(log, Keyring.from_settings(old_key)).set(OTHER, "B_KEY", _body("value-b"))
    await _service(log, Keyring.from_settings(generate_key())).set(P, "LOST", _body("value-c"))
    rotated = Keyring.from_settings(new_key, old_key)
    assert rotated.current is not None
    svc = _service(log, rotated)
    report = await svc.rotate()
    assert report["key_id"] == rotated.current.key_id
    assert report["resealed"] == 2
    assert report["changed_meanwhile"] == 0
    assert report["unreadable"] == [
        {"project_id": P, "name": "LOST", "key_id": log.rows[(P, "LOST")].key_id}
    ]
    only_new = Keyring.from_settings(new_key)
    for (project, name), value in {(P, "A_KEY"): "value-a", (OTHER, "B_KEY"): "value-b"}.items():
        row = log.rows[(project, name)]
        assert only_new.open(project, name, Sealed(row.key_id, row.ciphertext)) == value
    resealed = [e for _, e, _ in log.events[3:]]
    assert all(isinstance(e, SecretSet) and e.rotated for e in resealed)
    # Each re-seal expected the secret's last event to be the one it read.
    assert [exp for _, _, exp in log.events[3:]] == [1, 2]
    again = await svc.rotate()
    assert again["resealed"] == 0
    assert len(again["unreadable"]) == 1


async def test_rotation_leaves_a_secret_changed_meanwhile_alone() -> None:
    old_key, new_key = generate_key(), generate_key()
    log = Log()
    await _service(log, Keyring.from_settings(old_key)).set(P, "A_KEY", _body("value-a"))
    log.conflict_on.add("A_KEY")
    report = await _service(log, Keyring.from_settings(new_key, old_key)).rotate()
    assert report["resealed"] == 0
    assert report["changed_meanwhile"] == 1


async def test_rotation_without_a_current_key_is_503() -> None:
    with pytest.raises(ApiError) as err:
        await _service(Log(), Keyring.from_settings("")).rotate()
    assert err.value.status == 503
