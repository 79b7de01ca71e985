"""The runner's secrets (X2): the last event of each secret subject wins, the log is read
on from where it stopped, opened values live at most the TTL, and what cannot be opened
fails the job with a message holding no value."""

from __future__ import annotations

import fnmatch
from collections.abc import AsyncIterator

import msgspec
import pytest

from puras_common.events import encode_event
from puras_common.events.base import Event
from puras_common.events.types import SecretDeleted, SecretSet
from puras_common.secret_box import Keyring, generate_key
from puras_runner.adapters.secrets import LogSecrets
from puras_runner.domain.secrets import ProjectSecrets, SecretsUnavailable

P = "0a1b2c3d-0000-7000-8000-000000000001"
OTHER = "0a1b2c3d-0000-7000-8000-000000000002"
KEY = generate_key()


class FakeLog:
    """Messages by sequence, read as ``Bus.subject_messages`` reads them."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, str, bytes]] = []
        self.reads: list[tuple[str, int]] = []

    def add(self, project: str, event: Event, name: str) -> None:
        seq = len(self.messages) + 1
        data = encode_event(event, event_id=f"e{seq}", project_id=project, aggregate_id=name)
        self.messages.append((seq, f"ev.{project}.secret.{name}", data))

    async def subject_messages(
        self, subject: str, *, after_seq: int = 0
    ) -> AsyncIterator[tuple[int, bytes]]:
        self.reads.append((subject, after_seq))
        for seq, subj, data in self.messages:
            if seq > after_seq and fnmatch.fnmatchcase(subj, subject):
                yield seq, data


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _set(ring: Keyring, project: str, name: str, value: str) -> SecretSet:
    sealed = ring.seal(project, name, value)
    return SecretSet(name=name, key_id=sealed.key_id, ciphertext=sealed.ciphertext)


@pytest.fixture
def ring() -> Keyring:
    return Keyring.from_settings(KEY)


async def test_the_last_event_of_each_name_wins(ring: Keyring) -> None:
    log = FakeLog()
    log.add(P, _set(ring, P, "A", "first-value"), "A")
    log.add(P, _set(ring, P, "B", "bee-value"), "B")
    log.add(P, _set(ring, P, "A", "second-value"), "A")
    log.add(P, SecretDeleted(name="B"), "B")
    log.add(OTHER, _set(ring, OTHER, "C", "other-project"), "C")
    secrets = LogSecrets(log, ring, monotonic=Clock())
    assert dict(await secrets.secrets_for(P)) == {"A": "second-value"}
    assert dict(await secrets.secrets_for(OTHER)) == {"C": "other-project"}


async def test_values_are_reused_within_the_ttl_and_read_on_after_it(ring: Keyring) -> None:
    log = FakeLog()
    log.add(P, _set(ring, P, "A", "first-value"), "A")
    clock = Clock()
    secrets = LogSecrets(log, ring, ttl_s=5.0, monotonic=clock)
    assert dict(await secrets.secrets_for(P)) == {"A": "first-value"}
    log.add(P, _set(ring, P, "A", "second-value"), "A")
    clock.t += 4.9
    assert dict(await secrets.secrets_for(P)) == {"A": "first-value"}
    clock.t += 0.2
    assert dict(await secrets.secrets_for(P)) == {"A": "second-value"}
    # The second read started after the first one's last sequence.
    assert log.reads == [(f"ev.{P}.secret.*", 0), (f"ev.{P}.secret.*", 1)]


async def test_a_project_without_secrets_gets_none(ring: Keyring) -> None:
    assert dict(await LogSecrets(FakeLog(), ring).secrets_for(P)) == {}


async def test_no_key_fails_only_projects_that_have_secrets(ring: Keyring) -> None:
    log = FakeLog()
    log.add(P, _set(ring, P, "A", "a-value-1"), "A")
    keyless = LogSecrets(log, Keyring.from_settings(""))
    assert dict(await keyless.secrets_for(OTHER)) == {}
    with pytest.raises(SecretsUnavailable, match="PURAS_SECRETS_KEY"):
        await keyless.secrets_for(P)


async def test_a_secret_under_an_unknown_key_fails_without_its_value(ring: Keyring) -> None:
    log = FakeLog()
    log.add(P, _set(ring, P, "A", "a-value-1"), "A")
    with pytest.raises(SecretsUnavailable) as err:
        await LogSecrets(log, Keyring.from_settings(generate_key())).secrets_for(P)
    assert "PURAS_SECRETS_PREVIOUS_KEYS" in str(err.value)
    assert "a-value-1" not in str(err.value)


async def test_a_rotated_secret_opens_under_the_new_key(ring: Keyring) -> None:
    new = generate_key()
    rotated = Keyring.from_settings(new, KEY)
    log = FakeLog()
    log.add(P, _set(ring, P, "A", "a-value-1"), "A")
    log.add(P, msgspec.structs.replace(_set(rotated, P, "A", "a-value-1"), rotated=True), "A")
    # Only the new key: the re-sealed event is the one that counts.
    assert dict(await LogSecrets(log, Keyring.from_settings(new)).secrets_for(P)) == {
        "A": "a-value-1"
    }


def test_the_fold_ignores_what_it_applied_already() -> None:
    fold = ProjectSecrets()
    fold.apply(3, SecretSet(name="A", key_id="k", ciphertext="c3"))
    fold.apply(2, SecretDeleted(name="A"))
    assert fold.last_seq == 3
    assert set(fold.sealed) == {"A"}
    fold.apply(4, SecretDeleted(name="A"))
    assert fold.sealed == {}
