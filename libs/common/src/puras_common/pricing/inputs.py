"""Reading the priced quantities out of a media call's inputs and upstream outputs.

Inputs are passed to the upstream model unchanged (the raw docs: "we don't validate
shape, the model does"), so only what the price depends on is read here, exactly:
a duration becomes a :class:`~fractions.Fraction` (``"8s"``, ``5``, ``"5.5"``, the
upstream's ``inference_time``), never a float.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from puras_common.pricing.errors import PricingError
from puras_common.pricing.types import Condition

__all__ = ["read_condition", "read_count", "read_pixels", "read_seconds"]

_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*s?\s*$")
_WXH = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def _exact(value: Any, what: str) -> Fraction:
    """A non-negative number as an exact fraction (a float through its shortest repr)."""
    if isinstance(value, bool):
        raise PricingError(f"{what} must be a number of seconds, not {value!r}")
    if isinstance(value, int):
        n = Fraction(value)
    elif isinstance(value, float):
        try:
            n = Fraction(Decimal(repr(value)))
        except (InvalidOperation, ValueError, OverflowError):  # nan, inf
            raise PricingError(f"{what} must be a finite number, not {value!r}") from None
    elif isinstance(value, str) and (m := _SECONDS.match(value)):
        n = Fraction(Decimal(m.group(1)))
    else:
        raise PricingError(f"{what} must be a number of seconds (5, '5', '8s'), not {value!r}")
    if n < 0:
        raise PricingError(f"{what} must not be negative, got {value!r}")
    return n


def read_seconds(slug: str, inputs: dict[str, Any], outputs: dict[str, Any]) -> Fraction:
    """The output's duration: the requested ``duration``, else the upstream's
    ``inference_time`` (``duration`` ``"auto"`` lets the model decide)."""
    requested = inputs.get("duration")
    if requested is not None and requested != "auto":
        return _exact(requested, f"{slug}: inputs.duration")
    took = outputs.get("inference_time")
    if took is None:
        raise PricingError(
            f"{slug} is priced per second: give inputs.duration, or the upstream "
            "inference_time in outputs"
        )
    return _exact(took, f"{slug}: outputs.inference_time")


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PricingError(f"{what} must be a positive integer, not {value!r}")
    return value


def read_count(
    slug: str, count_input: str | None, inputs: dict[str, Any], outputs: dict[str, Any]
) -> int:
    """How many outputs the call made: ``num_outputs`` when the upstream reported it,
    else the requested count input (``num_images``), else 1."""
    if outputs.get("num_outputs") is not None:
        return _positive_int(outputs["num_outputs"], f"{slug}: outputs.num_outputs")
    if count_input is not None and inputs.get(count_input) is not None:
        return _positive_int(inputs[count_input], f"{slug}: inputs.{count_input}")
    return 1


def _size_text(value: Any) -> str | None:
    """``{width, height}`` as ``WxH``; a string as written; anything else: no size."""
    if isinstance(value, dict):
        w, h = value.get("width"), value.get("height")
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (w, h))
        return f"{w}x{h}" if ints else None
    return value if isinstance(value, str) else None


def read_pixels(
    slug: str, inputs: dict[str, Any], default: tuple[int, int] | None
) -> tuple[int, int]:
    """The output's width and height: ``width``/``height``, else ``image_size``
    (``{width, height}`` or ``WxH``), else the slug's default size."""
    w, h = inputs.get("width"), inputs.get("height")
    if w is not None or h is not None:
        return (
            _positive_int(w, f"{slug}: inputs.width"),
            _positive_int(h, f"{slug}: inputs.height"),
        )
    text = _size_text(inputs.get("image_size"))
    if text is not None and (m := _WXH.match(text)):
        what = f"{slug}: inputs.image_size"
        return (
            _positive_int(int(m.group(1)), f"{what} width"),
            _positive_int(int(m.group(2)), f"{what} height"),
        )
    if default is None:
        raise PricingError(
            f"{slug} is priced per megapixel: give inputs.width and inputs.height "
            "(or image_size as {width, height})"
        )
    return default


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


def read_condition(cond: Condition, inputs: dict[str, Any]) -> str:
    """The value of one condition of a rate table, before falling back to defaults."""
    for key in cond.inputs:
        value = inputs.get(key)
        if value is None:
            continue
        if cond.kind == "flag":
            return "true" if _truthy(value) else "false"
        text = _size_text(value)
        if text is None:
            return cond.default
        text = text.strip()
        return cond.aliases.get(text, text)
    return cond.default
