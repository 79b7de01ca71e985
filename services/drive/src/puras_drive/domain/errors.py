"""The drive API's refusals: a status, a stable code and a message that says what to fix
(the body ``{"error": {"code", "message"}}`` of every error, SPEC §13)."""

from __future__ import annotations

from typing import Any

__all__ = ["DriveApiError"]


class DriveApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}

    @classmethod
    def bad_request(cls, message: str, code: str = "bad_request") -> DriveApiError:
        return cls(400, code, message)

    @classmethod
    def unauthorized(cls, message: str) -> DriveApiError:
        return cls(401, "unauthorized", message)

    @classmethod
    def forbidden(cls, message: str) -> DriveApiError:
        return cls(403, "forbidden", message)

    @classmethod
    def not_found(cls, message: str) -> DriveApiError:
        return cls(404, "not_found", message)

    @classmethod
    def conflict(cls, message: str) -> DriveApiError:
        return cls(409, "conflict", message)

    @classmethod
    def too_large(cls, message: str) -> DriveApiError:
        return cls(413, "payload_too_large", message)
