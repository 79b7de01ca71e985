"""``web_search`` and ``image_search``: the operator's search backend, results normalised.

Backends: a SearXNG instance's JSON API (self-hosters) and the Brave Search API (hosted).
The backend is the operator's own configuration, not the model's choice, so it is
reached with a plain client: the SSRF policy of the agent's fetches does not apply (a
SearXNG on a private address is the usual setup), and the runner's proxy settings do.

Whatever the backend, web results are ``{title, url, snippet}`` and image results
``{title, image_url, thumbnail_url, width, height, source_url}`` (a size ``None`` when the
backend does not say). A failure is ``SearchUnavailable`` naming the backend and what
went wrong, never the API key: the model sees it as the tool's error.
"""

from __future__ import annotations

import html
import re
from typing import Any, Final

import httpx

from puras_common.logging import get_logger
from puras_runner.app.ports import Search
from puras_runner.domain.agent.errors import SearchUnavailable

__all__ = [
    "BACKENDS",
    "BRAVE_API_URL",
    "BraveSearch",
    "NoSearch",
    "SearxngSearch",
    "search_from_settings",
]

log = get_logger(__name__)

BACKENDS: Final = ("none", "searxng", "brave")
BRAVE_API_URL: Final = "https://api.search.brave.com/res/v1"
DEFAULT_TIMEOUT_S: Final = 15.0
_NOT_CONFIGURED: Final = (
    "web search is not configured on this Puras server (the operator sets "
    "PURAS_SEARCH_BACKEND=searxng with PURAS_SEARXNG_URL, or brave with PURAS_BRAVE_API_KEY)"
)
_TAG: Final = re.compile(r"<[^>]+>")
_RESOLUTION: Final = re.compile(r"^\s*(\d+)\s*[x\u00d7]\s*(\d+)\s*$", re.I)


class NoSearch:
    """No backend configured: every search is a clear tool error, never a failed job."""

    async def web(self, query: str, max_results: int) -> list[dict[str, Any]]:
        raise SearchUnavailable(_NOT_CONFIGURED)

    async def images(self, query: str, max_results: int) -> list[dict[str, Any]]:
        raise SearchUnavailable(_NOT_CONFIGURED)


class SearxngSearch:
    """A SearXNG instance (``base_url`` such as ``http://searxng:8080``; its
    ``settings.yml`` must list ``json`` in ``search.formats``)."""

    name: Final = "SearXNG"

    def __init__(self, base_url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._url = base_url.rstrip("/") + "/search"
        self._timeout_s = timeout_s

    async def web(self, query: str, max_results: int) -> list[dict[str, Any]]:
        body = await self._search(query, "general")
        return _web_hits(body.get("results"), "content", max_results)

    async def images(self, query: str, max_results: int) -> list[dict[str, Any]]:
        body = await self._search(query, "images")
        results: list[dict[str, Any]] = []
        for item in _items(body.get("results")):
            image_url = _str(item.get("img_src"))
            if image_url is None:
                continue
            width, height = _resolution(item.get("resolution"))
            results.append(
                {
                    "title": _text(item.get("title")),
                    "image_url": image_url,
                    "thumbnail_url": _str(item.get("thumbnail_src")) or image_url,
                    "width": width,
                    "height": height,
                    "source_url": _str(item.get("url")),
                }
            )
            if len(results) >= max_results:
                break
        return results

    async def _search(self, query: str, category: str) -> dict[str, Any]:
        params = {"q": query, "format": "json", "categories": category}
        body = await _get_json(self.name, self._url, params, {}, self._timeout_s)
        if not isinstance(body, dict):
            raise _unavailable(self.name, "answered with JSON that is not an object")
        return body


class BraveSearch:
    """The Brave Search API (``api_key``: the subscription token)."""

    name: Final = "Brave Search"

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = BRAVE_API_URL,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._key = api_key
        self._base = base_url.rstrip("/")
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"BraveSearch(base_url={self._base!r})"  # never the key

    async def web(self, query: str, max_results: int) -> list[dict[str, Any]]:
        # The web endpoint returns at most 20 results a page.
        body = await self._search("/web/search", query, min(max(max_results, 1), 20))
        web = body.get("web")
        return _web_hits(
            web.get("results") if isinstance(web, dict) else None, "description", max_results
        )

    async def images(self, query: str, max_results: int) -> list[dict[str, Any]]:
        body = await self._search("/images/search", query, min(max(max_results, 1), 100))
        results: list[dict[str, Any]] = []
        for item in _items(body.get("results")):
            props = item.get("properties")
            props = props if isinstance(props, dict) else {}
            thumb = item.get("thumbnail")
            thumb = thumb if isinstance(thumb, dict) else {}
            image_url = _str(props.get("url"))
            if image_url is None:
                continue
            results.append(
                {
                    "title": _text(item.get("title")),
                    "image_url": image_url,
                    "thumbnail_url": _str(thumb.get("src")) or image_url,
                    "width": _int(props.get("width")),
                    "height": _int(props.get("height")),
                    "source_url": _str(item.get("url")),
                }
            )
            if len(results) >= max_results:
                break
        return results

    async def _search(self, path: str, query: str, count: int) -> dict[str, Any]:
        headers = {"Accept": "application/json", "X-Subscription-Token": self._key}
        params = {"q": query, "count": str(count)}
        body = await _get_json(self.name, self._base + path, params, headers, self._timeout_s)
        if not isinstance(body, dict):
            raise _unavailable(self.name, "answered with JSON that is not an object")
        return body


def search_from_settings(
    backend: str,
    searxng_url: str,
    brave_api_key: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    brave_base_url: str = BRAVE_API_URL,
) -> Search:
    """The configured backend (``""`` or ``none``: :class:`NoSearch`). A backend name
    that is not known, or one missing its setting, raises ``ValueError`` saying which
    (the runner then refuses to start: the operator's configuration is wrong)."""
    name = backend.strip().lower()
    if name in ("", "none"):
        return NoSearch()
    if name == "searxng":
        if not searxng_url.strip():
            raise ValueError("search backend searxng needs PURAS_SEARXNG_URL (its base URL)")
        if not searxng_url.strip().lower().startswith(("http://", "https://")):
            raise ValueError(f"PURAS_SEARXNG_URL={searxng_url!r} is not an http:// or https:// URL")
        return SearxngSearch(searxng_url.strip(), timeout_s=timeout_s)
    if name == "brave":
        if not brave_api_key.strip():
            raise ValueError("search backend brave needs PURAS_BRAVE_API_KEY")
        return BraveSearch(brave_api_key.strip(), base_url=brave_base_url, timeout_s=timeout_s)
    raise ValueError(
        f"unknown search backend {backend!r}: PURAS_SEARCH_BACKEND is one of {', '.join(BACKENDS)}"
    )


async def _get_json(
    backend: str,
    url: str,
    params: dict[str, str],
    headers: dict[str, str],
    timeout_s: float,
) -> Any:
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            response = await client.get(url, params=params, headers=headers)
    except httpx.TimeoutException:
        raise _unavailable(backend, f"did not answer within {timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        # The exception's class, not its text: the text may carry the URL.
        raise _unavailable(backend, f"could not be reached ({type(exc).__name__})") from None
    if response.status_code >= 400:
        raise _unavailable(
            backend, f"answered HTTP {response.status_code}{_hint(backend, response.status_code)}"
        )
    try:
        return response.json()
    except ValueError:
        raise _unavailable(backend, "answered with something that is not JSON") from None


def _hint(backend: str, status: int) -> str:
    if status == 429:
        return " (rate limited; try again later)"
    if backend == BraveSearch.name and status in (401, 403):
        return " (the operator's API key was refused)"
    if backend == SearxngSearch.name and status == 403:
        return " (the instance may not allow format=json: its settings.yml search.formats)"
    return ""


def _unavailable(backend: str, what: str) -> SearchUnavailable:
    log.warning("search backend failed", backend=backend, reason=what)
    return SearchUnavailable(f"web search failed: {backend} {what}")


def _web_hits(raw: object, snippet_key: str, max_results: int) -> list[dict[str, Any]]:
    """A backend's web results as ``[{title, url, snippet}]``: entries without a URL are
    skipped, at most ``max_results``."""
    results: list[dict[str, Any]] = []
    for item in _items(raw):
        url = _str(item.get("url"))
        if url is None:
            continue
        results.append(
            {
                "title": _text(item.get("title")) or url,
                "url": url,
                "snippet": _text(item.get(snippet_key)),
            }
        )
        if len(results) >= max_results:
            break
    return results


def _items(value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def _str(value: object) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _text(value: object) -> str:
    """Backend text as plain text: Brave marks matches with ``<strong>``, both escape."""
    if not isinstance(value, str):
        return ""
    return " ".join(html.unescape(_TAG.sub("", value)).split())


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip()) or None
    return None


def _resolution(value: object) -> tuple[int | None, int | None]:
    """SearXNG's ``resolution``, engine-dependent: ``"1920x1080"``, ``"1920 x 1080"``, or
    with a multiplication sign (U+00D7) for the x."""
    match = _RESOLUTION.match(value) if isinstance(value, str) else None
    if match is None:
        return None, None
    return int(match.group(1)) or None, int(match.group(2)) or None
