"""The search backends against a fake SearXNG and a fake Brave Search API, both real
HTTP servers on loopback answering as the real ones do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from loopback_http import LoopbackServer, Reply, Seen, serve

from puras_runner.adapters.search import (
    BraveSearch,
    NoSearch,
    SearxngSearch,
    search_from_settings,
)
from puras_runner.domain.agent.errors import SearchUnavailable

KEY = "BSA-very-secret-token"


def _json(body: object, status: int = 200) -> Reply:
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json"})


def _query(seen: Seen) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(seen.path).query).items()}


SEARXNG_WEB = {
    "query": "loire tides",
    "results": [
        {
            "url": "https://tides.example/loire",
            "title": "Loire tides &amp; times",
            "content": "High and low water at <b>Saint-Nazaire</b>.",
            "engine": "duckduckgo",
        },
        {"title": "no url: skipped", "content": "x"},
        "not an object",
        {"url": "https://b.example/", "title": "", "content": None},
        {"url": "https://c.example/", "title": "Third", "content": "third"},
    ],
}

SEARXNG_IMAGES = {
    "results": [
        {
            "url": "https://photos.example/page",
            "title": "Estuary at dusk",
            "img_src": "https://photos.example/full.jpg",
            "thumbnail_src": "https://photos.example/thumb.jpg",
            "resolution": "1920 x 1080",
        },
        {
            "url": "https://b.example/",
            "title": "No size",
            "img_src": "https://b.example/img.png",
            "resolution": "\u00bfunknown?",
        },
        {"url": "https://c.example/", "title": "no image: skipped"},
        {
            "url": "https://d.example/",
            "title": "Sign",
            "img_src": "https://d.example/i.webp",
            "resolution": "640\u00d7480",
        },
    ]
}

BRAVE_WEB = {
    "type": "search",
    "web": {
        "results": [
            {
                "title": "Loire <strong>tides</strong>",
                "url": "https://tides.example/loire",
                "description": "Tide tables for the <strong>Loire</strong> estuary.",
            },
            {"title": "Second", "url": "https://b.example/", "description": "two"},
        ]
    },
}

BRAVE_IMAGES = {
    "type": "images",
    "results": [
        {
            "title": "Estuary at dusk",
            "url": "https://photos.example/page",
            "source": "photos.example",
            "thumbnail": {"src": "https://imgs.search.brave.com/thumb.jpg"},
            "properties": {
                "url": "https://photos.example/full.jpg",
                "placeholder": "https://imgs.search.brave.com/ph.jpg",
                "width": 1920,
                "height": 1080,
            },
        },
        {
            "title": "No size given",
            "url": "https://b.example/",
            "properties": {"url": "https://b.example/img.png"},
        },
    ],
}


@pytest.fixture
def searxng() -> Iterator[LoopbackServer]:
    def search(seen: Seen) -> Reply:
        category = _query(seen).get("categories")
        return _json(SEARXNG_IMAGES if category == "images" else SEARXNG_WEB)

    routes = {
        "/search": search,
        "/prefix/search": search,
        "/locked/search": lambda _: Reply(403, b"Forbidden"),
        "/broken/search": lambda _: Reply(500, b"Internal Server Error"),
        "/html/search": lambda _: Reply(200, b"<html>not json</html>"),
        "/list/search": lambda _: _json([1, 2]),
        "/slow/search": lambda _: Reply(200, b"{}", hold=True),
    }
    with serve(routes) as srv:
        yield srv


@pytest.fixture
def brave() -> Iterator[LoopbackServer]:
    def authorised(body: dict[str, Any]) -> Any:
        def route(seen: Seen) -> Reply:
            if seen.headers.get("x-subscription-token") != KEY:
                return _json({"type": "ErrorResponse", "error": {"code": "SUBSCRIPTION"}}, 401)
            return _json(body)

        return route

    routes = {
        "/res/v1/web/search": authorised(BRAVE_WEB),
        "/res/v1/images/search": authorised(BRAVE_IMAGES),
        "/limited/web/search": lambda _: _json({"type": "ErrorResponse"}, 429),
    }
    with serve(routes) as srv:
        yield srv


async def test_searxng_web_results_are_normalised(searxng: LoopbackServer) -> None:
    results = await SearxngSearch(searxng.url("")).web("loire tides", 5)
    assert results == [
        {
            "title": "Loire tides & times",
            "url": "https://tides.example/loire",
            "snippet": "High and low water at Saint-Nazaire.",
        },
        {"title": "https://b.example/", "url": "https://b.example/", "snippet": ""},
        {"title": "Third", "url": "https://c.example/", "snippet": "third"},
    ]
    assert _query(searxng.seen[-1]) == {
        "q": "loire tides",
        "format": "json",
        "categories": "general",
    }


async def test_searxng_returns_at_most_max_results(searxng: LoopbackServer) -> None:
    results = await SearxngSearch(searxng.url("/prefix/")).web("q", 2)
    assert [r["url"] for r in results] == ["https://tides.example/loire", "https://b.example/"]
    assert searxng.seen[-1].path.startswith("/prefix/search?")


async def test_searxng_image_results_are_normalised(searxng: LoopbackServer) -> None:
    results = await SearxngSearch(searxng.url("")).images("estuary", 5)
    assert results == [
        {
            "title": "Estuary at dusk",
            "image_url": "https://photos.example/full.jpg",
            "thumbnail_url": "https://photos.example/thumb.jpg",
            "width": 1920,
            "height": 1080,
            "source_url": "https://photos.example/page",
        },
        {
            "title": "No size",
            "image_url": "https://b.example/img.png",
            "thumbnail_url": "https://b.example/img.png",
            "width": None,
            "height": None,
            "source_url": "https://b.example/",
        },
        {
            "title": "Sign",
            "image_url": "https://d.example/i.webp",
            "thumbnail_url": "https://d.example/i.webp",
            "width": 640,
            "height": 480,
            "source_url": "https://d.example/",
        },
    ]
    assert _query(searxng.seen[-1])["categories"] == "images"


@pytest.mark.parametrize(
    ("prefix", "said"),
    [
        ("/locked", "SearXNG answered HTTP 403 (the instance may not allow format=json"),
        ("/broken", "SearXNG answered HTTP 500"),
        ("/html", "SearXNG answered with something that is not JSON"),
        ("/list", "SearXNG answered with JSON that is not an object"),
    ],
)
async def test_searxng_failures_name_the_backend(
    searxng: LoopbackServer, prefix: str, said: str
) -> None:
    with pytest.raises(SearchUnavailable) as caught:
        await SearxngSearch(searxng.url(prefix)).web("q", 5)
    assert str(caught.value).startswith(f"web search failed: {said}")


async def test_searxng_timeout(searxng: LoopbackServer) -> None:
    with pytest.raises(SearchUnavailable, match=r"SearXNG did not answer within 0.3 s"):
        await SearxngSearch(searxng.url("/slow"), timeout_s=0.3).web("q", 5)


async def test_searxng_unreachable_does_not_show_its_address() -> None:
    with serve({}) as srv:
        url = srv.url("")
    with pytest.raises(SearchUnavailable) as caught:
        await SearxngSearch(url).images("q", 5)
    assert str(caught.value) == "web search failed: SearXNG could not be reached (ConnectError)"


async def test_brave_web_results_are_normalised(brave: LoopbackServer) -> None:
    search = BraveSearch(KEY, base_url=brave.url("/res/v1"))
    results = await search.web("loire tides", 1)
    assert results == [
        {
            "title": "Loire tides",
            "url": "https://tides.example/loire",
            "snippet": "Tide tables for the Loire estuary.",
        }
    ]
    seen = brave.seen[-1]
    assert seen.path.startswith("/res/v1/web/search?")
    assert _query(seen) == {"q": "loire tides", "count": "1"}
    assert seen.headers["x-subscription-token"] == KEY


async def test_brave_image_results_are_normalised(brave: LoopbackServer) -> None:
    results = await BraveSearch(KEY, base_url=brave.url("/res/v1/")).images("estuary", 5)
    assert results == [
        {
            "title": "Estuary at dusk",
            "image_url": "https://photos.example/full.jpg",
            "thumbnail_url": "https://imgs.search.brave.com/thumb.jpg",
            "width": 1920,
            "height": 1080,
            "source_url": "https://photos.example/page",
        },
        {
            "title": "No size given",
            "image_url": "https://b.example/img.png",
            "thumbnail_url": "https://b.example/img.png",
            "width": None,
            "height": None,
            "source_url": "https://b.example/",
        },
    ]
    assert brave.seen[-1].path.startswith("/res/v1/images/search?")


async def test_brave_count_stays_within_the_apis_limit(brave: LoopbackServer) -> None:
    await BraveSearch(KEY, base_url=brave.url("/res/v1")).web("q", 50)
    assert _query(brave.seen[-1])["count"] == "20"


async def test_a_refused_brave_key_is_not_shown(brave: LoopbackServer) -> None:
    search = BraveSearch("BSA-wrong-token", base_url=brave.url("/res/v1"))
    with pytest.raises(SearchUnavailable) as caught:
        await search.web("q", 5)
    message = str(caught.value)
    assert message == (
        "web search failed: Brave Search answered HTTP 401 (the operator's API key was refused)"
    )
    assert "BSA" not in message
    assert "BSA" not in repr(search)


async def test_brave_rate_limit(brave: LoopbackServer) -> None:
    with pytest.raises(SearchUnavailable, match=r"Brave Search answered HTTP 429 \(rate limited"):
        await BraveSearch(KEY, base_url=brave.url("/limited")).web("q", 5)


async def test_no_backend_is_a_clear_tool_error() -> None:
    for call in (NoSearch().web, NoSearch().images):
        with pytest.raises(SearchUnavailable) as caught:
            await call("q", 5)
        assert str(caught.value).startswith("web search is not configured on this Puras server")
        assert "PURAS_SEARCH_BACKEND=searxng" in str(caught.value)


def test_settings_choose_the_backend() -> None:
    assert isinstance(search_from_settings("", "", ""), NoSearch)
    assert isinstance(search_from_settings("none", "http://s", KEY), NoSearch)
    assert isinstance(search_from_settings("SearXNG", "http://searxng:8080", ""), SearxngSearch)
    assert isinstance(search_from_settings("brave", "", KEY), BraveSearch)


@pytest.mark.parametrize(
    ("backend", "url", "key", "said"),
    [
        ("google", "", "", "unknown search backend 'google': PURAS_SEARCH_BACKEND is one of "
         "none, searxng, brave"),
        ("searxng", "", "", "search backend searxng needs PURAS_SEARXNG_URL"),
        ("searxng", "searxng:8080", "", "is not an http:// or https:// URL"),
        ("brave", "", " ", "search backend brave needs PURAS_BRAVE_API_KEY"),
    ],
)  # fmt: skip
def test_bad_settings_are_an_operator_error(backend: str, url: str, key: str, said: str) -> None:
    with pytest.raises(ValueError, match=said.replace("(", r"\(")):
        search_from_settings(backend, url, key)
