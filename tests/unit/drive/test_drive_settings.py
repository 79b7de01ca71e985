"""Choosing the drive's storage: the filesystem unless told otherwise, and an S3 setup
refused at start when a piece is missing, with the variable to set."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from puras_drive.settings import DriveSettings

_SECRETS = {
    "internal_token": "a-real-internal-token-of-the-drive",
    "signing_secret": "a-real-signing-secret-of-the-drive",
}
_S3 = {
    **_SECRETS,
    "storage": "s3",
    "s3_endpoint": "https://minio.internal:9000",
    "s3_bucket": "puras",
    "s3_access_key": "drive",
    "s3_secret_key": "a-real-secret-of-the-drive",
}


def test_the_filesystem_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PURAS_DRIVE_STORAGE", "PURAS_STORAGE"):
        monkeypatch.delenv(name, raising=False)
    assert DriveSettings.model_validate({"env": "prod", **_SECRETS}).storage == "filesystem"


def test_s3_is_chosen_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _S3.items():
        monkeypatch.setenv(f"PURAS_DRIVE_{name.upper()}", value)
    settings = DriveSettings(env="prod")
    assert settings.storage == "s3"
    assert settings.s3_location() == ("minio.internal:9000", True)
    assert "a-real-secret" not in repr(settings)  # SecretStr: never in logs


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"s3_endpoint": ""}, "PURAS_DRIVE_S3_ENDPOINT"),
        ({"s3_endpoint": "minio:9000"}, "PURAS_DRIVE_S3_ENDPOINT"),
        ({"s3_endpoint": "https://minio:9000/bucket"}, "no path"),
        ({"s3_bucket": ""}, "PURAS_DRIVE_S3_BUCKET"),
        ({"s3_access_key": ""}, "PURAS_DRIVE_S3_ACCESS_KEY"),
        ({"s3_secret_key": ""}, "PURAS_DRIVE_S3_SECRET_KEY"),
        ({"s3_secret_key": "changeme"}, "placeholder"),
    ],
)
def test_an_incomplete_s3_setup_is_refused(change: dict[str, str], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        DriveSettings.model_validate({"env": "prod", **_S3, **change})


def test_a_placeholder_secret_is_fine_on_a_development_machine() -> None:
    settings = DriveSettings.model_validate({"env": "dev", **_S3, "s3_secret_key": "dev"})
    assert settings.s3_secret_key.get_secret_value() == "dev"


@pytest.mark.parametrize("secret", ["internal_token", "signing_secret"])
@pytest.mark.parametrize("value", ["", "changeme"])
def test_the_api_secrets_are_required_outside_dev(secret: str, value: str) -> None:
    with pytest.raises(ValidationError, match=f"PURAS_DRIVE_{secret.upper()}"):
        DriveSettings.model_validate({"env": "prod", **_SECRETS, secret: value})


def test_the_api_defaults_follow_the_contract() -> None:
    settings = DriveSettings.model_validate({"env": "prod", **_SECRETS})
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8091)
    assert settings.max_upload_bytes == 52_428_800  # 50 MiB (D2)
    assert settings.sign_ttl_s == 3600
    assert "a-real-internal-token" not in repr(settings)
    with pytest.raises(ValidationError, match="sign_ttl_s"):
        DriveSettings.model_validate({"env": "prod", **_SECRETS, "sign_ttl_s": 7 * 24 * 3600 + 1})
