"""The permission matrix itself (``puras_common.bus.permissions``, ``puras_common.db``):
who may write which facts, checked against the subjects and tables the code uses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from puras_billing.bootstrap import BILLING_PROJECTIONS
from puras_billing.settings import BillingSettings
from puras_common.bus.permissions import (
    IDEMPOTENCY_BUCKET,
    IDENTITIES,
    OPS,
    SERVICES,
    dev_authorization,
    inbox_prefix,
    replace_docs,
    subject_matches,
)
from puras_common.bus.streams import declared_streams
from puras_common.db import DB_ROLES
from puras_common.events.subjects import (
    CMD_BILLING_GRANT,
    CMD_SCHEDULER_CANCEL,
    CMD_SCHEDULER_SUBMIT,
    live_subject,
    submit_subject,
)
from puras_common.settings import ServiceSettings
from puras_drive.adapters.projection import DriveFilesProjection
from puras_drive.settings import DriveSettings
from puras_gateway.adapters import idempotency
from puras_gateway.adapters.projections import GATEWAY_PROJECTIONS
from puras_gateway.settings import GatewaySettings
from puras_runner.settings import RunnerSettings
from puras_scheduler.settings import SchedulerSettings

P = "0a1b2c3d-0000-7000-8000-000000000001"
"""A project id; the matrix must not care whose."""

# (subject, the identities that may publish it): every other service must be refused.
WRITERS: list[tuple[str, set[str]]] = [
    (submit_subject(P, P), {"gateway"}),
    (CMD_SCHEDULER_SUBMIT, set()),
    (CMD_SCHEDULER_CANCEL, {"gateway"}),
    (CMD_BILLING_GRANT, {"gateway"}),
    ("cmd.drive.put", set()),
    (f"ev.{P}.project.{P}", {"gateway"}),
    (f"ev.{P}.key.abcd1234", {"gateway"}),
    (f"ev.{P}.ledger.{P}", {"billing"}),
    # Deployments have one writer, the gateway: build requests go to the runners, and
    # their reports of each outcome back to the gateways, which record it (Z7).
    (f"ev.{P}.deployments.{P}", {"gateway"}),
    (f"build.{P}", {"gateway"}),
    ("$JS.API.CONSUMER.MSG.NEXT.PURAS_BUILDS.runners-builds", {"runner"}),
    ("$JS.ACK.PURAS_BUILDS.runners-builds.1.2.3.4.5", {"runner"}),
    (f"cmd.gateway.built.{P}", {"runner"}),
    ("$JS.API.CONSUMER.MSG.NEXT.PURAS_CMDS.gateway-builds", {"gateway"}),
    ("$JS.ACK.PURAS_CMDS.gateway-builds.1.2.3.4.5", {"gateway"}),
    (f"ev.{P}.job.j1", {"scheduler", "runner", "billing"}),
    # Project secrets (X1): sealed by the gateway, their one writer.
    (f"ev.{P}.secret.API_KEY", {"gateway"}),
    ("work.default", {"scheduler"}),
    (f"held.{P}.j1", {"scheduler"}),
    (live_subject(P, P), {"runner"}),
    ("live.x", set()),
    ("$JS.API.STREAM.DELETE.PURAS_EVENTS", set()),
    ("$JS.API.STREAM.PURGE.PURAS_EVENTS", set()),
    ("$JS.API.STREAM.UPDATE.PURAS_EVENTS", set()),
    ("$JS.API.STREAM.MSG.DELETE.PURAS_EVENTS", set()),
    ("$JS.API.STREAM.MSG.DELETE.PURAS_WORK", {"scheduler"}),
    ("$JS.API.CONSUMER.MSG.NEXT.PURAS_WORK.runners-default", {"runner"}),
    ("$JS.API.CONSUMER.MSG.NEXT.PURAS_CMDS.scheduler", {"scheduler"}),
    ("$JS.API.CONSUMER.MSG.NEXT.PURAS_CMDS.billing", {"billing"}),
    ("$JS.ACK.PURAS_CMDS.billing.1.2.3.4.5", {"billing"}),
    # Billing reads the job subjects from its own checkpoint now: the durable of earlier
    # versions is only looked at and deleted, never pulled from or acked.
    ("$JS.API.CONSUMER.MSG.NEXT.PURAS_EVENTS.billing-usage", set()),
    ("$JS.API.CONSUMER.DURABLE.CREATE.PURAS_EVENTS.billing-usage", set()),
    ("$JS.ACK.PURAS_EVENTS.billing-usage.1.2.3.4.5", set()),
    ("$JS.API.CONSUMER.MSG.NEXT.PURAS_EVENTS.other", set()),
    ("$JS.ACK.PURAS_WORK.runners-default.1.2.3.4.5", {"runner"}),
    ("$KV.PURAS_IDEMPOTENCY.p.h", {"gateway"}),
    ("$O.PURAS_BUNDLES.M.x", {"gateway"}),
]


def _may_publish(identity: str, subject: str) -> bool:
    return any(subject_matches(p, subject) for p in IDENTITIES[identity].publish)


def _may_subscribe(identity: str, subject: str) -> bool:
    return any(subject_matches(p, subject) for p in IDENTITIES[identity].subscribe)


@pytest.mark.parametrize(("subject", "writers"), WRITERS)
def test_each_fact_has_exactly_its_writers(subject: str, writers: set[str]) -> None:
    allowed = {s for s in SERVICES if _may_publish(s, subject)}
    assert allowed == writers


def test_only_the_gateway_hears_live_text_and_no_stream_stores_it() -> None:
    live = live_subject(P, P)
    assert {s for s in SERVICES if _may_subscribe(s, live)} == {"gateway"}
    for spec in declared_streams():
        assert not any(subject_matches(pat, live) for pat in spec.subjects), spec.name


def test_every_service_has_an_identity_and_ops_is_the_only_superuser() -> None:
    assert set(SERVICES) == {"gateway", "scheduler", "runner", "billing", "drive"}
    for name, ident in IDENTITIES.items():
        wide = {">", "$JS.API.>", "ev.>", "_INBOX.>", "$JS.>"}
        if name == OPS:
            assert ident.publish == (">",)
        else:
            assert not wide & set(ident.publish), name
            assert not wide & set(ident.subscribe), name


def test_replies_reach_only_their_identity() -> None:
    for name in SERVICES:
        mine = f"{inbox_prefix(name)}.abc.1"
        assert _may_subscribe(name, mine)
        for other in SERVICES:
            if other != name:
                assert not _may_subscribe(name, f"{inbox_prefix(other)}.abc.1"), (name, other)


@pytest.mark.parametrize(
    "settings_cls",
    [GatewaySettings, SchedulerSettings, RunnerSettings, BillingSettings, DriveSettings],
)
def test_each_service_connects_with_its_identitys_inbox(
    settings_cls: type[ServiceSettings],
) -> None:
    secret = "s3cr3t-n4ts-p4ss"
    s = settings_cls(env="dev", nats_user=settings_cls.service, nats_password=SecretStr(secret))
    creds = s.nats_credentials()
    assert (creds.user, creds.password) == (settings_cls.service, secret)
    assert creds.inbox_prefix == inbox_prefix(settings_cls.service)
    assert secret not in repr(creds)
    assert secret not in repr(s)


def test_every_service_may_check_the_declared_streams() -> None:
    for name in SERVICES:
        for spec in declared_streams():
            assert _may_publish(name, f"$JS.API.STREAM.INFO.{spec.name}"), (name, spec.name)


def test_bucket_names_match_the_code() -> None:
    assert IDEMPOTENCY_BUCKET == idempotency.IDEMPOTENCY_BUCKET


def test_the_rendered_block_lists_every_identity_with_its_password() -> None:
    block = dev_authorization({n: f"pw-{n}" for n in IDENTITIES})
    for n in IDENTITIES:
        assert f'user: "{n}"' in block
        assert f'password: "pw-{n}"' in block
    with pytest.raises(ValueError, match="no password"):
        dev_authorization({"gateway": "x"})


def test_database_roles_own_exactly_their_projections_tables() -> None:
    gw, billing = DB_ROLES["gateway"], DB_ROLES["billing"]
    assert set(gw.projections) == {p.name for p in GATEWAY_PROJECTIONS}
    assert set(billing.projections) == {p.name for p in BILLING_PROJECTIONS}
    assert {t for p in GATEWAY_PROJECTIONS for t in p.tables} | {"api_key_usage"} == set(gw.tables)
    assert {t for p in BILLING_PROJECTIONS for t in p.tables} == set(billing.tables)
    assert not set(gw.tables) & set(billing.tables)
    drive = DB_ROLES["drive"]
    assert set(drive.projections) == {DriveFilesProjection.name}
    assert set(drive.tables) == set(DriveFilesProjection.tables)
    assert not set(drive.tables) & (set(gw.tables) | set(billing.tables))
    assert {"database_url", "database_password"} <= set(DriveSettings.model_fields)
    # Services without tables have no database settings at all.
    for cls in (SchedulerSettings, RunnerSettings):
        assert not {"database_url", "database_password"} & set(cls.model_fields), cls


def test_the_architecture_docs_show_the_current_matrix() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
    text = doc.read_text()
    assert replace_docs(text) == text, (
        "docs/architecture.md is stale: run python -m puras_common.bus.permissions "
        "deploy/k8s/nats/nats.conf --docs docs/architecture.md"
    )


def test_the_runner_forgets_its_credentials_once_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PURAS_RUNNER_NATS_USER", "runner")
    monkeypatch.setenv("PURAS_RUNNER_NATS_PASSWORD", "s3cr3t-runner-pass")
    monkeypatch.setenv("PURAS_NATS_PASSWORD", "s3cr3t-shared-pass")
    settings = RunnerSettings(env="dev")
    settings.scrub_secrets_from_environ()
    assert settings.nats_credentials().password == "s3cr3t-runner-pass"
    assert "PURAS_RUNNER_NATS_PASSWORD" not in os.environ
    assert "PURAS_NATS_PASSWORD" not in os.environ
    assert os.environ["PURAS_RUNNER_NATS_USER"] == "runner"


def test_a_placeholder_nats_password_is_refused_outside_dev() -> None:
    # (pydantic wraps the SettingsError in its ValidationError, a ValueError too)
    with pytest.raises(ValueError, match="PURAS_SCHEDULER_NATS_PASSWORD"):
        SchedulerSettings(env="prod", nats_user="scheduler", nats_password=SecretStr("changeme"))
    with pytest.raises(ValueError, match="PURAS_SCHEDULER_NATS_PASSWORD"):
        SchedulerSettings(env="prod", nats_user="scheduler")
