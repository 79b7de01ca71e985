"""Drive settings (env prefix ``PURAS_DRIVE_``, falling back to ``PURAS_``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import SecretStr, model_validator

from puras_common.settings import ServiceSettings, SettingsError, is_placeholder

__all__ = ["DriveSettings"]


class DriveSettings(ServiceSettings):
    service: ClassVar[str] = "drive"

    root: Path = Path("/var/lib/puras/drive")
    """Local-filesystem drive: one folder per project under this root (env PURAS_DRIVE_ROOT)."""
    storage: Literal["filesystem", "s3"] = "filesystem"
    """Where the drive's files are: ``filesystem`` (under ``root``, the embedded default)
    or ``s3`` (an S3-compatible object store such as MinIO, the ``s3_*`` settings)."""
    s3_endpoint: str = ""
    """URL of the S3-compatible server, e.g. ``https://minio.internal:9000`` (``http://``
    only on a trusted network: the keys sign every request, the bytes travel in clear)."""
    s3_bucket: str = ""
    """The one bucket of every project's drive (keys ``drive/<project_id>/...``)."""
    s3_region: str = ""
    """The bucket's region, if the server needs one (AWS does; MinIO accepts any)."""
    s3_access_key: SecretStr = SecretStr("")
    """Access key of the drive's S3 identity; never logged."""
    s3_secret_key: SecretStr = SecretStr("")
    """Secret key of the drive's S3 identity; never logged."""
    s3_create_bucket: bool = False
    """Create the bucket at start if it is missing (a development MinIO); otherwise a
    missing bucket stops the start with an error."""

    def s3_location(self) -> tuple[str, bool]:
        """``(host:port, secure)`` of ``s3_endpoint``, as the S3 client takes them."""
        parts = urlsplit(self.s3_endpoint)
        return parts.netloc, parts.scheme == "https"

    @model_validator(mode="after")
    def _s3_complete(self) -> DriveSettings:
        if self.storage != "s3":
            return self
        parts = urlsplit(self.s3_endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
            raise SettingsError(
                f"PURAS_DRIVE_S3_ENDPOINT={self.s3_endpoint!r} is not the URL of an S3 "
                "server; set it like https://minio.internal:9000 (no path)"
            )
        if not self.s3_bucket:
            raise SettingsError("PURAS_DRIVE_S3_BUCKET is empty; name the drive's bucket")
        if not self.s3_access_key.get_secret_value().strip():
            raise SettingsError("PURAS_DRIVE_S3_ACCESS_KEY is empty; set the drive's S3 key")
        if self.env != "dev" and is_placeholder(self.s3_secret_key.get_secret_value()):
            raise SettingsError(
                "PURAS_DRIVE_S3_SECRET_KEY is empty or a placeholder; set the secret of the "
                "drive's S3 key, or PURAS_ENV=dev on a development machine"
            )
        return self
