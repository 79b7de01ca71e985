"""Idempotency keys (J10): what a claim on a key says, and what makes two bodies equal."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import msgspec

__all__ = ["Claim", "body_hash"]

_sorted = msgspec.json.Encoder(order="sorted")


@dataclass(frozen=True, slots=True)
class Claim:
    job_id: str
    """The job this key stands for (new, or the original one)."""
    first: bool
    """True for the request that created the key: it must submit the job."""
    same_body: bool
    """False when the key was first used with a different body."""


def body_hash(skill: str, inputs: dict[str, object]) -> str:
    """A hash of the request that ignores key order and whitespace."""
    return hashlib.sha256(_sorted.encode({"skill": skill, "inputs": inputs})).hexdigest()
