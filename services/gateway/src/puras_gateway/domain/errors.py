"""API errors: a status, a stable code and a message that says what to fix."""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError"]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}

    @classmethod
    def bad_request(cls, message: str, code: str = "bad_request", **extra: Any) -> ApiError:
        return cls(400, code, message, **extra)

    @classmethod
    def unauthorized(cls, message: str) -> ApiError:
        return cls(401, "unauthorized", message)

    @classmethod
    def not_found(cls, message: str, code: str = "not_found", **extra: Any) -> ApiError:
        return cls(404, code, message, **extra)

    @classmethod
    def conflict(cls, message: str, code: str = "conflict", **extra: Any) -> ApiError:
        return cls(409, code, message, **extra)

    @classmethod
    def too_large(cls, message: str) -> ApiError:
        return cls(413, "payload_too_large", message)

    @classmethod
    def unprocessable(cls, message: str, code: str = "invalid_inputs", **extra: Any) -> ApiError:
        return cls(422, code, message, **extra)

    @classmethod
    def unavailable(cls, message: str) -> ApiError:
        return cls(503, "unavailable", message)
