"""Feedback on a job's result (J9): what a body may hold, and the stats of a job's rows.

Pure: the use case (:mod:`puras_gateway.app.feedback`) records what :func:`parse_feedback`
accepts, and :func:`feedback_stats` sums what the projection holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from puras_gateway.domain.errors import ApiError
from puras_gateway.domain.requests import parse_json_body

__all__ = [
    "FEEDBACK_FIELDS",
    "MAX_COMMENT_CHARS",
    "MAX_END_USER_ID_CHARS",
    "MAX_FEEDBACK_BODY_BYTES",
    "RATINGS",
    "Feedback",
    "feedback_stats",
    "parse_feedback",
]

RATINGS: Final = (-1, 0, 1)
"""Thumbs down, no thumb (a comment only), thumbs up."""
MAX_COMMENT_CHARS: Final = 4000
"""A comment is a remark on a result, not a document: longer ones are refused (400)."""
MAX_END_USER_ID_CHARS: Final = 200
"""An id the project's own frontend gives its users (a UUID, an email, a handle)."""
MAX_FEEDBACK_BODY_BYTES: Final = 64 * 1024
"""A body larger than this is a 413 before it is parsed: a comment at its cap, even all
in 4-byte characters and JSON-escaped, fits with room to spare."""
FEEDBACK_FIELDS: Final = ("rating", "comment", "end_user_id")


@dataclass(frozen=True, slots=True)
class Feedback:
    """One accepted piece of feedback, ready to be recorded."""

    rating: int
    comment: str
    end_user_id: str


def _bad(message: str) -> ApiError:
    return ApiError.bad_request(message, code="invalid_feedback")


def parse_feedback(raw: bytes) -> Feedback:
    """The feedback of a ``POST /v1/jobs/{id}/feedback`` body, or a 400 saying what to fix.

    ``{"rating": -1|0|1, "comment": str, "end_user_id": str}``, every field optional, but
    a non-zero rating or a non-empty comment is required (J9).
    """
    body = parse_json_body(raw, dict[str, Any], "feedback body")
    unknown = sorted(k for k in body if k not in FEEDBACK_FIELDS)
    if unknown:
        raise _bad(
            f"unknown field {unknown[0]!r}; a feedback body has only the fields "
            f"{', '.join(FEEDBACK_FIELDS)}"
        )
    rating = body.get("rating", 0)
    # bool is an int in Python; `true` is not a rating.
    if isinstance(rating, bool) or not isinstance(rating, int) or rating not in RATINGS:
        raise _bad(f"`rating` must be -1 (down), 0 (no thumb) or 1 (up); got {rating!r}")
    comment = body.get("comment", "")
    if comment is None:
        comment = ""
    if not isinstance(comment, str):
        raise _bad(f"`comment` must be a string; got {type(comment).__name__}")
    if len(comment) > MAX_COMMENT_CHARS:
        raise _bad(
            f"`comment` is {len(comment)} characters; at most {MAX_COMMENT_CHARS} are kept, "
            "shorten it"
        )
    end_user_id = body.get("end_user_id", "")
    if end_user_id is None:
        end_user_id = ""
    if not isinstance(end_user_id, str):
        raise _bad(
            f'`end_user_id` must be a string (your own id of the user, "" for anonymous); '
            f"got {type(end_user_id).__name__}"
        )
    if len(end_user_id) > MAX_END_USER_ID_CHARS:
        raise _bad(f"`end_user_id` is longer than {MAX_END_USER_ID_CHARS} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in end_user_id):
        raise _bad("`end_user_id` must not contain control characters")
    if rating == 0 and not comment.strip():
        raise _bad(
            "feedback needs a rating of -1 or 1, or a non-empty comment (or both); got neither"
        )
    return Feedback(rating=rating, comment=comment, end_user_id=end_user_id)


def feedback_stats(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``{up, down, count, score}`` of a job's feedback rows: ``count`` is every row (a
    comment without a thumb too), ``score = up - down``."""
    up = down = count = 0
    for row in rows:
        count += 1
        rating = int(row["rating"])
        if rating > 0:
            up += 1
        elif rating < 0:
            down += 1
    return {"up": up, "down": down, "count": count, "score": up - down}
