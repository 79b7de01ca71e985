"""web_fetch's page-to-text: HTML fixtures through trafilatura (and its fallback), text
types decoded, other types described, and clipping."""

from __future__ import annotations

import pytest
import trafilatura

from puras_runner.domain.agent.web_text import clip, page_text

URL = "https://news.example/story"

ARTICLE = b"""<!DOCTYPE html>
<html><head>
<meta charset="utf-8">
<title>  Tide tables of the  Loire estuary </title>
<style>body { color: SECRET_STYLE; }</style>
<script>var tracking = "SECRET_SCRIPT";</script>
</head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/about">About us</a></li></ul></nav>
<main><article>
<h1>When the tide turns at Saint-Nazaire</h1>
<p>The estuary sees two high tides a day, and the difference between neap and spring
tides reaches more than five metres at the harbour mouth.</p>
<p>Fishermen plan their departures around the ebb, which carries boats out past the
bridge in under an hour when the wind is from the east.</p>
<script>document.write("SECRET_INLINE")</script>
<table><tr><th>Day</th><th>High water</th></tr><tr><td>Monday</td><td>06:12</td></tr></table>
</article></main>
<footer>Copyright 2026 Estuary News</footer>
<noscript>SECRET_NOSCRIPT</noscript>
</body></html>"""

NAVIGATION_ONLY = b"""<html><head><title>Site map</title>
<script>SECRET_SCRIPT()</script></head>
<body><footer><nav><a href="/a">Alpha</a> <a href="/b">Beta</a>
<a href="/c">Gamma</a></nav></footer></body></html>"""


def test_html_keeps_the_main_text_and_the_title() -> None:
    title, text = page_text(ARTICLE, "text/html", "utf-8", URL)
    assert title == "Tide tables of the Loire estuary"
    assert "two high tides a day" in text
    assert "Fishermen plan their departures around the ebb" in text
    assert "06:12" in text


def test_html_drops_scripts_and_styles() -> None:
    _, text = page_text(ARTICLE, "text/html", "utf-8", URL)
    assert "SECRET" not in text
    assert "color:" not in text


def test_a_page_without_an_article_falls_back_to_its_visible_text() -> None:
    # The fixture is one trafilatura keeps nothing of, even favouring recall.
    assert trafilatura.extract(NAVIGATION_ONLY.decode(), favor_recall=True) is None
    title, text = page_text(NAVIGATION_ONLY, "text/html", None, URL)
    assert title == "Site map"
    assert [w for w in ("Alpha", "Beta", "Gamma") if w in text] == ["Alpha", "Beta", "Gamma"]
    assert "SECRET" not in text


def test_an_empty_page_is_empty_text() -> None:
    assert page_text(b"<html><body></body></html>", "text/html", None, URL) == (None, "")


def test_html_charset_from_the_header_wins() -> None:
    body = "<html><head><title>Cr\u00e8me br\u00fbl\u00e9e</title></head><body></body></html>"
    title, _ = page_text(body.encode("latin-1"), "text/html", "ISO-8859-1", URL)
    assert title == "Cr\u00e8me br\u00fbl\u00e9e"


def test_html_charset_from_a_meta_tag() -> None:
    body = (
        '<html><head><meta charset="windows-1252"><title>\u201cQuoted\u201d</title></head>'
        "<body><p>x</p></body></html>"
    )
    title, _ = page_text(body.encode("cp1252"), "text/html", None, URL)
    assert title == "\u201cQuoted\u201d"


def test_an_unknown_charset_still_decodes() -> None:
    title, _ = page_text(b"<title>plain</title>", "text/html", "no-such-charset", URL)
    assert title == "plain"


@pytest.mark.parametrize(
    ("media_type", "body"),
    [
        ("text/plain", "line one\nline two \u00e9"),
        ("application/json", '{"k": ["v\u00e9", 1]}'),
        ("application/xml", "<root><a>1</a></root>"),
        ("application/vnd.api+json", '{"data": []}'),
        ("text/csv", "a,b\n1,2"),
        ("text/markdown", "# Title\n\n<b>kept as written</b>"),
    ],
)
def test_text_types_are_decoded_as_they_are(media_type: str, body: str) -> None:
    assert page_text(body.encode(), media_type, None, URL) == (None, body)


def test_text_in_a_declared_charset() -> None:
    assert page_text("\u00e9t\u00e9".encode("utf-16"), "text/plain", "utf-16", URL) == (
        None,
        "\u00e9t\u00e9",
    )


@pytest.mark.parametrize(
    ("media_type", "body"),
    [
        ("image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100),
        ("application/pdf", b"%PDF-1.7\n..."),
        ("application/zip", b"PK\x03\x04"),
        ("application/octet-stream", b"\x00\x01"),
    ],
)
def test_other_types_say_what_they_are_and_how_to_get_them(media_type: str, body: bytes) -> None:
    title, text = page_text(body, media_type, None, URL)
    assert title is None
    assert f"is {media_type} content ({len(body)} bytes)" in text
    assert "download_url" in text
    assert "file_read" in text


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"<!doctype html><html><title>Sniffed</title><p>x</p></html>", "html"),
        (b"just words", "text"),
        (b"\x00\x01\x02binary", "other"),
    ],
)
def test_a_body_without_a_type_is_sniffed(body: bytes, kind: str) -> None:
    title, text = page_text(body, "", None, URL)
    if kind == "html":
        assert title == "Sniffed"
    elif kind == "text":
        assert text == "just words"
    else:
        assert "of an unknown type content" in text


def test_clip_leaves_short_text_alone() -> None:
    assert clip("short", 10) == "short"
    assert clip("x" * 10, 10) == "x" * 10


def test_clip_cuts_and_says_how_much() -> None:
    clipped = clip("a" * 30 + "b" * 70, 30)
    assert clipped.startswith("a" * 30 + "\n\n[")
    assert "b" not in clipped.split("\n\n[")[0]
    assert "70 more characters cut" in clipped
    assert "100 characters" in clipped
