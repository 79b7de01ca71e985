"""Calling a registered media model from inside a job (SPEC S2): ``media.run``.

The call goes to the Puras API (``POST /v1/media/generate``) with the job's own service
token, which is how the gateway knows the job, bills the project and attributes the
output file to the job; the gateway calls the model, saves the output in the project's
drive and answers with where it put it. The runner sets both in every job's
environment: ``PURAS_API_URL`` and ``PURAS_JOB_TOKEN``.

Inside the job sandbox the only way out is the runner's egress proxy
(``PURAS_EGRESS_PROXY``, ``host:port``), run outside the sandbox. When it is set the
request goes through it even though the API URL names the loopback and ``NO_PROXY``
lists it: the job's loopback is not the host's, so only the proxy can reach the API.
Without it (skill code run on a laptop against a local stack) the connection is direct;
``HTTP_PROXY`` and friends are not consulted in either case.

One request per call and never a retry: the upstream model may have run (and been
billed) even when its answer is lost, so whether to call again is the caller's choice.
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from email.message import Message
from typing import IO, Any, Final
from urllib.parse import urlsplit

from puras._drive_paths import DrivePathError, normalize_file_path
from puras._errors import PurasError
from puras._fetch import EGRESS_PROXY_ENV

__all__ = [
    "API_URL_ENV",
    "EGRESS_PROXY_ENV",
    "JOB_TOKEN_ENV",
    "KINDS",
    "RESULT_KEYS",
    "TIMEOUT_SECONDS",
    "run",
]

API_URL_ENV: Final = "PURAS_API_URL"
"""Base URL of the Puras API, set by the runner in a job's environment."""
JOB_TOKEN_ENV: Final = "PURAS_JOB_TOKEN"  # noqa: S105 - the variable's name, no secret
"""The job's service token, set by the runner; media calls are billed to its job."""
KINDS: Final = ("image", "video", "audio", "auto")
"""Values of ``kind``; ``auto`` lets the gateway tell from the output."""
RESULT_KEYS: Final = (
    "model",
    "kind",
    "drive_path",
    "output_url",
    "request_id",
    "billed_micros",
    "billed_usd",
    "meta",
)
"""What every answer of ``POST /v1/media/generate`` holds."""
TIMEOUT_SECONDS: Final = 15 * 60.0
"""How long the API may stay silent: video models take minutes."""

_PATH: Final = "/v1/media/generate"
_USER_AGENT: Final = "puras-sdk/0.1"
_MAX_ANSWER_BYTES: Final = 4 * 1024 * 1024
"""An answer is a small JSON object; anything larger is not one."""


def run(
    model: str,
    inputs: Mapping[str, Any] | None = None,
    *,
    output_path: str | None = None,
    output_url_path: str | None = None,
    kind: str = "auto",
    **kwargs: Any,
) -> dict[str, Any]:
    """Runs the registered media model ``model`` on ``inputs`` and returns its output.

    ``inputs`` go to the model as they are (the model validates them); keyword
    arguments are merged into them and win over a key of the same name. ``output_path``
    is where in the drive to save the output (default ``media/<id>.<ext>``);
    ``output_url_path`` (jq-style, ``outputs[0].asset.url``) says where the output URL
    is in an unusual model response; ``kind`` is ``image``, ``video``, ``audio`` or
    ``auto``. An input named like one of these keywords goes in ``inputs``.

    Returns ``{model, kind, drive_path, output_url, request_id, billed_micros,
    billed_usd, meta}``: ``drive_path`` is authoritative, ``output_url`` a signed URL
    (about an hour). Raises :class:`PurasError` saying what to fix; when the API refused
    the call, its ``status`` and ``code`` are those of the answer.
    """
    if not isinstance(model, str) or not model.strip():
        raise PurasError(
            f"media.run needs a model slug such as 'openai/gpt-image-2', not {model!r} "
            "(GET /v1/pricing lists them)"
        )
    body = _encoded(
        model,
        {
            "model": model,
            "inputs": _merged(model, inputs, kwargs),
            "kind": _checked_kind(model, kind),
            "output_path": _checked_output_path(model, output_path),
            "output_url_path": _checked_url_path(model, output_url_path),
        },
    )
    url, token = _endpoint()
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked in _endpoint
        url,
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
        },
    )
    proxy = _proxy()
    if proxy is not None:
        # Set on the request itself: urllib's ProxyHandler would skip the proxy for a
        # NO_PROXY host, and the API's host is the loopback NO_PROXY names.
        request.set_proxy(proxy, "http")
    return _send(model, request, url)


def _merged(model: str, inputs: object, kwargs: dict[str, Any]) -> dict[str, Any]:
    if inputs is None:
        return dict(kwargs)
    if not isinstance(inputs, Mapping):
        raise PurasError(
            f"media.run({model!r}): inputs must be a dict of the model's arguments, not "
            f"{type(inputs).__name__} (e.g. {{'prompt': 'a red bicycle'}})"
        )
    return {**inputs, **kwargs}


def _checked_kind(model: str, kind: object) -> str:
    if kind not in KINDS:
        raise PurasError(
            f"media.run({model!r}): kind must be one of {', '.join(KINDS)}, not {kind!r}"
        )
    return str(kind)


def _checked_output_path(model: str, output_path: object) -> str | None:
    if output_path is None:
        return None
    if not isinstance(output_path, str):
        raise PurasError(
            f"media.run({model!r}): output_path must be a drive path such as "
            f"'renders/clip.mp4', not {type(output_path).__name__}"
        )
    # The drive's own rules, checked before anything is billed; the canonical form is
    # what the gateway stores under.
    try:
        return normalize_file_path(output_path)
    except DrivePathError as exc:
        raise PurasError(f"media.run({model!r}): output_path: {exc}") from None


def _checked_url_path(model: str, output_url_path: object) -> str | None:
    if output_url_path is None:
        return None
    if not isinstance(output_url_path, str) or not output_url_path.strip():
        raise PurasError(
            f"media.run({model!r}): output_url_path must be a jq-style path such as "
            f"'outputs[0].asset.url', not {output_url_path!r}"
        )
    return output_url_path


def _encoded(model: str, body: dict[str, Any]) -> bytes:
    try:
        # NaN and infinities are not JSON: the gateway would refuse the whole body.
        return json.dumps(body, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise PurasError(
            f"media.run({model!r}): inputs must be JSON values (strings, numbers, booleans, "
            f"None, lists and dicts) with string keys: {exc}; pass a file as its URL "
            "(the output_url of an earlier call, for one)"
        ) from None


def _endpoint() -> tuple[str, str]:
    base = os.environ.get(API_URL_ENV, "").strip()
    token = os.environ.get(JOB_TOKEN_ENV, "").strip()
    missing = [name for name, value in ((API_URL_ENV, base), (JOB_TOKEN_ENV, token)) if not value]
    if missing:
        raise PurasError(
            f"media.run works inside a Puras job, where the runner sets {API_URL_ENV} and "
            f"{JOB_TOKEN_ENV}; {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
            f"not set here. To try it outside a job, set {API_URL_ENV} to the API's base URL "
            f"(e.g. http://localhost:8080) and {JOB_TOKEN_ENV} to a job service token"
        )
    try:
        scheme = urlsplit(base).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme not in ("http", "https"):
        raise PurasError(
            f"{API_URL_ENV}={base!r} is not an http:// or https:// URL; set it to the Puras "
            "API's base URL, e.g. http://localhost:8080"
        )
    return base.rstrip("/") + _PATH, token


def _proxy() -> str | None:
    raw = os.environ.get(EGRESS_PROXY_ENV, "").strip()
    if not raw:
        return None
    # host:port as the runner sets it; a URL form (http://host:port) is taken too.
    return urlsplit(raw).netloc if "://" in raw else raw


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """The API answers, it never redirects: following one would resend the job's token
    (and, after a 303, drop the body) to wherever the redirect points."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


def _send(model: str, request: urllib.request.Request, url: str) -> dict[str, Any]:
    # No environment proxies (the egress proxy, if any, is already on the request).
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())
    try:
        with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            raw = response.read(_MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise _refused(model, exc.code, exc.reason, _error_body(exc)) from None
    except TimeoutError:
        raise PurasError(
            f"media.run({model!r}) failed: the Puras API gave no answer within "
            f"{TIMEOUT_SECONDS:g} s; the model may still finish and be billed, so look for "
            "its output in the drive (media/) before calling again"
        ) from None
    except urllib.error.URLError as exc:  # before the request was sent
        raise PurasError(
            f"media.run({model!r}) failed: cannot reach the Puras API at {url}: {exc.reason}"
        ) from None
    except (OSError, http.client.HTTPException) as exc:  # after: the answer was lost
        raise PurasError(
            f"media.run({model!r}) failed: the connection to the Puras API broke before "
            f"its answer ({exc!r}); the model may still have run and been billed, so look "
            "for its output in the drive (media/) before calling again"
        ) from None
    return _result(model, raw)


def _error_body(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read(_MAX_ANSWER_BYTES)
    except OSError:  # the connection broke while the body was read
        return b""
    finally:
        exc.close()


def _refused(model: str, status: int, reason: object, raw: bytes) -> PurasError:
    """The error of an HTTP error answer: its own message when the body has one."""
    code: str | None = None
    message = f"HTTP {status} {reason}".strip()
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        detail = body.get("detail")  # FastAPI's own shape, for errors it raises itself
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            message = error["message"]
            code = error.get("code") if isinstance(error.get("code"), str) else None
        elif isinstance(detail, str):
            message = detail
        elif detail is not None:
            message = f"HTTP {status}: {json.dumps(detail)[:500]}"
    elif raw.strip():
        message += ": " + raw[:200].decode("utf-8", "replace").strip()
    return PurasError(f"media.run({model!r}) failed: {message}", status=status, code=code)


def _result(model: str, raw: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(raw) if len(raw) <= _MAX_ANSWER_BYTES else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise PurasError(
            f"media.run({model!r}) failed: the Puras API did not answer with a JSON object"
        )
    missing = [key for key in RESULT_KEYS if key not in answer]
    if missing:
        raise PurasError(
            f"media.run({model!r}) failed: the Puras API's answer lacks {', '.join(missing)}"
        )
    return answer
