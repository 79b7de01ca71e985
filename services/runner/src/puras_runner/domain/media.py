"""Reading a media model's result (SPEC S2): where the output file is, what to call it,
what it is, what the call is priced on, and what else the model said.

The upstream models answer in many shapes (``images[0].url``, ``video.url``,
``audio_file.url``...). :func:`find_output_url` knows the common ones and follows a
jq-style ``output_url_path`` (``outputs[0].asset.url``) for the rest; every error says
what was found instead, so a user can write the path that fits.

Pure: no I/O, the result is the decoded JSON the upstream returned.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, get_args
from urllib.parse import unquote, urlsplit

from puras_common.pricing.types import MediaKind

__all__ = [
    "KNOWN_OUTPUT_PATHS",
    "MediaOutputError",
    "PathStep",
    "RequestedKind",
    "check_requested_kind",
    "extension_for",
    "find_output_url",
    "kind_of",
    "meta_of",
    "outputs_for_pricing",
    "parse_output_path",
    "resolve_kind",
]

RequestedKind = Literal["image", "video", "audio", "auto"]
_REQUESTED: Final = get_args(RequestedKind)

PathStep = str | int
"""A key of an object, or an index of a list (negative counts from the end)."""

KNOWN_OUTPUT_PATHS: Final[tuple[str, ...]] = (
    "images[0].url",
    "image.url",
    "video.url",
    "audio.url",
    "audio_file.url",
    "output.url",
    "output[0]",
    "output",
    "url",
)
"""The shapes tried, in order, when no ``output_url_path`` is given."""

_FILE_FIELDS: Final = frozenset(
    {"images", "image", "video", "videos", "audio", "audio_file", "output", "outputs", "url"}
)
"""Top-level result fields that hold output files rather than facts about the call."""

_EXTENSION: Final = re.compile(r"^[a-z0-9]{1,8}$")
_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INDEX: Final = re.compile(r"\[(-?\d+)\]")
_QUOTED: Final = re.compile(r"""\[(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\]""")

_BY_CONTENT_TYPE: Final = {
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/pjpeg": "jpg",
    "image/svg+xml": "svg",
    "image/x-icon": "ico",
    "image/vnd.microsoft.icon": "ico",
    "video/quicktime": "mov",
    "video/x-matroska": "mkv",
    "video/x-msvideo": "avi",
    "video/mpeg": "mpeg",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mp4": "m4a",
    "audio/x-m4a": "m4a",
    "audio/vnd.wave": "wav",
    "audio/wave": "wav",
    "application/ogg": "ogg",
}
"""Content types whose usual extension is not their subtype (``image/png`` -> ``png``
needs no entry)."""

_KIND_OF_EXTENSION: Final[dict[str, MediaKind]] = {
    **dict.fromkeys(
        ("png", "jpg", "jpeg", "webp", "gif", "avif", "heic", "heif", "bmp", "tif", "tiff"),
        "image",
    ),
    **dict.fromkeys(("svg", "ico"), "image"),
    **dict.fromkeys(("mp4", "webm", "mov", "mkv", "avi", "m4v", "mpeg", "mpg"), "video"),
    **dict.fromkeys(("mp3", "wav", "ogg", "oga", "flac", "m4a", "aac", "opus"), "audio"),
}


class MediaOutputError(ValueError):
    """The result or the call's options cannot be read as asked; ``str()`` says what
    was found and what to change (a user error: the caller answers 4xx)."""


# -- output_url_path ----------------------------------------------------------------------


def parse_output_path(path: str) -> list[PathStep]:
    """``outputs[0].asset.url`` -> ``["outputs", 0, "asset", "url"]``.

    The jq subset a result needs: ``key``, ``.key``, ``[N]`` (``[-1]`` is the last
    item) and ``["odd key"]``; a leading ``.`` is allowed, as jq writes it.
    """
    if not isinstance(path, str) or not path.strip():
        raise MediaOutputError("output_url_path is empty: give a path like outputs[0].asset.url")
    text = path.strip()
    steps: list[PathStep] = []
    pos = 1 if text.startswith(".") and not text.startswith("..") else 0
    first = True
    while pos < len(text):
        char = text[pos]
        if char == "[":
            if index := _INDEX.match(text, pos):
                steps.append(int(index.group(1)))
                pos = index.end()
            elif quoted := _QUOTED.match(text, pos):
                raw = quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
                steps.append(re.sub(r"\\(.)", r"\1", raw))
                pos = quoted.end()
            else:
                raise _bad_path(path, pos, "a [ must hold an index like [0] or a quoted key")
        else:
            if not first:
                if char != ".":
                    raise _bad_path(path, pos, "expected . or [ between steps")
                pos += 1
            key = _KEY.match(text, pos)
            if key is None:
                raise _bad_path(path, pos, "expected a key (letters, digits, _ or -)")
            steps.append(key.group(0))
            pos = key.end()
        first = False
    if not steps:
        # "." alone is jq's whole value: a result object is never a URL.
        raise _bad_path(path, pos, "expected at least one key or index")
    return steps


def _bad_path(path: str, pos: int, why: str) -> MediaOutputError:
    return MediaOutputError(
        f"output_url_path {path!r} is not a path like outputs[0].asset.url: {why} "
        f"at character {pos + 1}"
    )


def _shown_path(steps: Sequence[PathStep]) -> str:
    out = ""
    for step in steps:
        if isinstance(step, int):
            out += f"[{step}]"
        elif _KEY.fullmatch(step):
            out += f".{step}" if out else step
        else:
            out += f"[{json.dumps(step)}]"
    return out or "the result"


def _describe(value: Any) -> str:
    """What a step found, for an error: the keys of an object, the length of a list."""
    if isinstance(value, Mapping):
        keys = ", ".join(sorted(str(k) for k in value)) or "none"
        return f"an object with keys: {keys}"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    return "a string"


def _walk(result: Any, steps: Sequence[PathStep], path: str) -> Any:
    value = result
    for i, step in enumerate(steps):
        here = _shown_path(steps[:i])
        if isinstance(step, int):
            if not isinstance(value, list):
                raise MediaOutputError(
                    f"output_url_path {path!r}: {here} is {_describe(value)}, not a list, "
                    f"so it has no [{step}]"
                )
            if not -len(value) <= step < len(value):
                raise MediaOutputError(
                    f"output_url_path {path!r}: {here} is {_describe(value)}; "
                    f"[{step}] is out of range"
                )
            value = value[step]
        else:
            if not isinstance(value, Mapping):
                raise MediaOutputError(
                    f"output_url_path {path!r}: {here} is {_describe(value)}, not an object, "
                    f"so it has no key {step!r}"
                )
            if step not in value:
                raise MediaOutputError(
                    f"output_url_path {path!r}: no key {step!r} in {here}, "
                    f"which is {_describe(value)}"
                )
            value = value[step]
    return value


def _as_url(value: Any) -> str | None:
    """A string that is a URL the output can be fetched from (``http(s)`` or ``data:``);
    an object pointed at whole counts by its ``url``."""
    if isinstance(value, Mapping):
        value = value.get("url")
    if isinstance(value, str) and value.strip().lower().startswith(
        ("http://", "https://", "data:")
    ):
        return value.strip()
    return None


def find_output_url(result: Mapping[str, Any], output_url_path: str | None = None) -> str:
    """The URL of the call's output file.

    With ``output_url_path``, exactly what it points at (an object there counts by its
    ``url`` field); else the first of :data:`KNOWN_OUTPUT_PATHS` that holds a URL. Raises
    :class:`MediaOutputError` naming what was found.
    """
    if output_url_path is not None:
        steps = parse_output_path(output_url_path)
        found = _walk(result, steps, output_url_path)
        url = _as_url(found)
        if url is None:
            raise MediaOutputError(
                f"output_url_path {output_url_path!r} points at {_describe(found)}, "
                "not an http(s) URL"
            )
        return url
    for known in KNOWN_OUTPUT_PATHS:
        try:
            found = _walk(result, parse_output_path(known), known)
        except MediaOutputError:
            continue
        if (url := _as_url(found)) is not None:
            return url
    keys = ", ".join(sorted(str(k) for k in result)) if isinstance(result, Mapping) else ""
    raise MediaOutputError(
        "cannot find the output URL in the model's result (top-level keys: "
        f"{keys or 'none'}); point at it with output_url_path, e.g. outputs[0].asset.url"
    )


# -- naming and kind ----------------------------------------------------------------------


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _data_url_type(url: str) -> str:
    """``data:image/png;base64,...`` -> ``image/png``."""
    head = url.strip()[5:].split(",", 1)[0]
    return _media_type(head)


def extension_for(url: str, content_type: str | None = None) -> str:
    """The file extension for an output, with its dot: the URL path's (``.webp``), else
    the content type's (``image/png`` -> ``.png``), else ``.bin``.

    Only ``[a-z0-9]{1,8}`` is ever returned after the dot: the name is used in the
    project's drive, so nothing from the upstream can make it a path or a dotfile.
    """
    if url.strip().lower().startswith("data:"):
        content_type = content_type or _data_url_type(url)
    else:
        name = unquote(urlsplit(url.strip()).path).rsplit("/", 1)[-1]
        stem, dot, ext = name.rpartition(".")
        if dot and stem and _EXTENSION.fullmatch(ext.lower()):
            return f".{ext.lower()}"
    media_type = _media_type(content_type)
    known = _BY_CONTENT_TYPE.get(media_type)
    if known is not None:
        return f".{known}"
    subtype = media_type.partition("/")[2].removeprefix("x-")
    return f".{subtype}" if _EXTENSION.fullmatch(subtype) else ".bin"


def kind_of(extension: str | None = None, content_type: str | None = None) -> MediaKind | None:
    """What a file is, from its content type (``video/mp4``), else its extension; None
    when neither says (``application/octet-stream``, ``.bin``)."""
    major = _media_type(content_type).split("/", 1)[0]
    if major in ("image", "video", "audio"):
        return major  # type: ignore[return-value]  # narrowed by the test above
    if extension:
        return _KIND_OF_EXTENSION.get(extension.lower().lstrip("."))
    return None


def resolve_kind(
    requested: str,
    slug_kind: MediaKind,
    *,
    extension: str | None = None,
    content_type: str | None = None,
) -> MediaKind:
    """The ``kind`` a media call reports.

    ``auto`` resolves from the output (its content type, else its extension), else the
    slug's registered kind. An explicit kind is echoed, even where the output says
    otherwise: by then the upstream call is made and paid for, and failing it would
    bill the user for nothing; ``drive_path`` (named from the output itself) is what
    tells the file's real type. Only a value that is no kind at all is an error, and
    it is checked before any call (see :func:`check_requested_kind`).
    """
    kind = check_requested_kind(requested)
    if kind != "auto":
        return kind
    return kind_of(extension, content_type) or slug_kind


def check_requested_kind(requested: str) -> RequestedKind:
    """``requested`` if it is one of image, video, audio, auto; else
    :class:`MediaOutputError` saying which are."""
    if requested not in _REQUESTED:
        raise MediaOutputError(f"kind must be one of {', '.join(_REQUESTED)}, not {requested!r}")
    return requested  # type: ignore[return-value]  # narrowed by the test above


# -- pricing and meta ---------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number >= 0 and number == number and number != float("inf") else None


def _inference_time(result: Mapping[str, Any]) -> float | None:
    metrics = result.get("metrics")
    if (
        isinstance(metrics, Mapping)
        and (took := _number(metrics.get("inference_time"))) is not None
    ):
        return took
    timings = result.get("timings")
    if isinstance(timings, Mapping):
        return _number(timings.get("inference"))
    return None


def _positive_count(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


def outputs_for_pricing(
    result: Mapping[str, Any],
    inputs: Mapping[str, Any],
    *,
    count_input: str | None = "num_images",
) -> dict[str, Any]:
    """What the upstream delivered, as :meth:`Registry.media_cost` reads ``outputs``:
    ``num_outputs`` and, when the model reported it, ``inference_time`` in seconds
    (``metrics.inference_time``, else ``timings.inference``).

    ``num_outputs`` counts what came back (a model asked for 4 images that returns 2
    bills 2): the length of the first non-empty output list (``images``, ``videos``,
    ``outputs``); 1 for a single output (``image``, ``video``, ...). A result in no
    known shape (read with ``output_url_path``) counts as the inputs asked
    (``count_input``, e.g. ``num_images``), else 1.
    """
    count: int | None = None
    for name in ("images", "videos", "audios", "outputs", "output"):
        listed = result.get(name)
        if isinstance(listed, list) and listed:
            count = len(listed)
            break
    if count is None:
        try:
            find_output_url(result)
            count = 1
        except MediaOutputError:
            asked = inputs.get(count_input) if count_input is not None else None
            count = _positive_count(asked) or 1
    outputs: dict[str, Any] = {"num_outputs": count}
    took = _inference_time(result)
    if took is not None:
        outputs["inference_time"] = took
    return outputs


def meta_of(result: Mapping[str, Any], output_url_path: str | None = None) -> dict[str, Any]:
    """The result without its output files, for S2's ``meta``: ``metrics``, ``seed``,
    ``timings``, ``has_nsfw_concepts``, whatever else the model said.

    The files are dropped (the caller gets them as ``drive_path`` / ``output_url``, and
    the upstream's own file URLs are not ours to hand out), as is the top-level field
    an ``output_url_path`` points into.
    """
    dropped = set(_FILE_FIELDS)
    if output_url_path is not None:
        try:
            steps = parse_output_path(output_url_path)
        except MediaOutputError:
            steps = []
        if steps and isinstance(steps[0], str):
            dropped.add(steps[0])
    return {str(k): v for k, v in result.items() if k not in dropped}
