from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import SecretStr

from puras_common.settings import ServiceSettings


class DemoSettings(ServiceSettings):
    service: ClassVar[str] = "demo"
    secret_fields: ClassVar[tuple[str, ...]] = ("token",)
    token: SecretStr = SecretStr("")
    port: int = 1


def test_own_prefix_wins_over_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PURAS_ENV", "dev")
    monkeypatch.setenv("PURAS_PORT", "2")
    assert DemoSettings().port == 2
    monkeypatch.setenv("PURAS_DEMO_PORT", "3")
    assert DemoSettings().port == 3


def test_placeholder_secret_refused_outside_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PURAS_ENV", "prod")
    monkeypatch.setenv("PURAS_DEMO_TOKEN", "changeme")
    with pytest.raises(ValueError, match="PURAS_DEMO_TOKEN"):
        DemoSettings()
    monkeypatch.setenv("PURAS_DEMO_TOKEN", "a-real-long-random-token-value")
    assert DemoSettings().token.get_secret_value().startswith("a-real")
    monkeypatch.setenv("PURAS_ENV", "dev")
    monkeypatch.setenv("PURAS_DEMO_TOKEN", "")
    assert DemoSettings().env == "dev"


def test_bad_values_say_what_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PURAS_DEMO_PORT", "eighty")
    with pytest.raises(ValueError, match="port"):
        DemoSettings()
