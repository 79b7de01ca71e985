"""Project secrets (X1) on a real nats-server and Postgres: the gateway's table holds
each project's last set of each name (ciphertext, never the value), a rotation's re-seal
keeps ``updated_at``, a delete removes the row, and a replay changes nothing. The
runner's reader (direct gets over ``ev.<project>.secret.*``) sees the same secrets."""

from __future__ import annotations

import uuid

import msgspec
import pytest
from projector_helpers import Projector

from puras_common.bus import Bus
from puras_common.db import create_pool
from puras_common.events.base import Event
from puras_common.events.ids import secret_deleted_id, secret_set_id
from puras_common.events.subjects import AGG_SECRET
from puras_common.events.types import SecretDeleted, SecretSet
from puras_common.secret_box import Keyring, Sealed, generate_key
from puras_gateway.adapters.secrets_table import SecretsProjection, SecretsTable
from puras_runner.adapters.secrets import LogSecrets

pytestmark = pytest.mark.integration

OLD, NEW = generate_key(), generate_key()


async def _append(bus: Bus, project: str, event: Event, name: str) -> int:
    make_id = secret_deleted_id if isinstance(event, SecretDeleted) else secret_set_id
    pub = await bus.append(
        event,
        project_id=project,
        aggregate=AGG_SECRET,
        aggregate_id=name,
        event_id=make_id(name, str(uuid.uuid4())),
    )
    return pub.seq


def _set(ring: Keyring, project: str, name: str, value: str, *, rotated: bool = False) -> SecretSet:
    sealed = ring.seal(project, name, value)
    return SecretSet(name=name, key_id=sealed.key_id, ciphertext=sealed.ciphertext, rotated=rotated)


async def test_the_table_and_the_runner_follow_sets_deletes_and_reseals(
    bus: Bus, database_url: str
) -> None:
    project, other = str(uuid.uuid4()), str(uuid.uuid4())
    old = Keyring.from_settings(OLD)
    new = Keyring.from_settings(NEW, OLD)
    await _append(bus, project, _set(old, project, "API_KEY", "value-one"), "API_KEY")
    await _append(bus, project, _set(old, project, "GONE", "value-gone"), "GONE")
    await _append(bus, other, _set(old, other, "API_KEY", "other-value"), "API_KEY")
    await _append(bus, project, _set(old, project, "API_KEY", "value-two"), "API_KEY")
    await _append(bus, project, SecretDeleted(name="GONE"), "GONE")
    last = await _append(
        bus, project, _set(new, project, "API_KEY", "value-two", rotated=True), "API_KEY"
    )
    projector = Projector(database_url, bus, SecretsProjection())
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        await projector.applied(last)
        table = SecretsTable(pool)
        rows = await table.of_project(project)
        assert [r.name for r in rows] == ["API_KEY"]
        (row,) = rows
        assert row.key_id == Keyring.from_settings(NEW).current.key_id  # type: ignore[union-attr]
        assert row.last_seq == last
        assert row.created_at < row.updated_at  # overwritten once, then re-sealed
        assert new.open(project, "API_KEY", Sealed(row.key_id, row.ciphertext)) == "value-two"
        assert await table.get(other, "GONE") is None
        assert [r.name for r in await table.of_project(other)] == ["API_KEY"]
        assert [r.project_id for r in await table.sealed_elsewhere(row.key_id)] == [other]
        # No value in any column of any row.
        dump = msgspec.json.encode(
            [dict(r) for r in await pool.fetch("SELECT * FROM secrets")]
        ).decode()
        for value in ("value-one", "value-two", "value-gone", "other-value"):
            assert value not in dump
    finally:
        await projector.stop()
    again = Projector(database_url, bus, SecretsProjection())
    try:
        await again.applied(last)
        assert await SecretsTable(pool).of_project(project) == rows
    finally:
        await again.stop()
        await pool.close()
    # The runner, with the new key only, reads the same secrets from the log.
    runner_view = LogSecrets(bus, Keyring.from_settings(NEW))
    assert dict(await runner_view.secrets_for(project)) == {"API_KEY": "value-two"}
    # The other project's API_KEY was sealed under the old key only: not this runner's.
    old_view = LogSecrets(bus, Keyring.from_settings(NEW, OLD))
    assert dict(await old_view.secrets_for(other)) == {"API_KEY": "other-value"}


async def test_a_reseal_keeps_updated_at_and_a_set_moves_it(bus: Bus, database_url: str) -> None:
    project = str(uuid.uuid4())
    old = Keyring.from_settings(OLD)
    new = Keyring.from_settings(NEW, OLD)
    await _append(bus, project, _set(old, project, "A_KEY", "v1"), "A_KEY")
    seq = await _append(bus, project, _set(new, project, "A_KEY", "v1", rotated=True), "A_KEY")
    projector = Projector(database_url, bus, SecretsProjection())
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        await projector.applied(seq)
        (resealed,) = await SecretsTable(pool).of_project(project)
        assert resealed.created_at == resealed.updated_at
        seq = await _append(bus, project, _set(new, project, "A_KEY", "v2"), "A_KEY")
        await projector.applied(seq)
        (changed,) = await SecretsTable(pool).of_project(project)
        assert changed.updated_at > resealed.updated_at
        assert changed.created_at == resealed.created_at
    finally:
        await projector.stop()
        await pool.close()
