"""What ``web_fetch`` hands the model: a fetched body as readable text, and clipped.

HTML is reduced to its main content with trafilatura (headings, paragraphs, lists and
tables kept as Markdown; navigation, scripts and styles dropped). A page that is mostly
navigation, or one trafilatura finds no article in, falls back to all the visible text
of the body, so the model still sees something of it. Text types (text/*, JSON, XML,
YAML, ...) are decoded as they are. Anything else (images, PDFs, archives) is described
in one line, pointing at ``download_url`` and ``file_read``. No script is ever run.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser
from typing import Final

import trafilatura

__all__ = ["clip", "is_html", "is_text", "page_text"]

_HTML_TYPES: Final = frozenset({"text/html", "application/xhtml+xml"})
_TEXT_APPLICATION_TYPES: Final = frozenset(
    {
        "application/json",
        "application/ld+json",
        "application/x-ndjson",
        "application/xml",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/javascript",
        "application/ecmascript",
        "application/x-sh",
        "application/sql",
        "application/graphql",
        "application/csv",
        "application/rss+xml",
        "application/atom+xml",
    }
)
_META_CHARSET: Final = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_SNIFF_BYTES: Final = 4096


def is_html(media_type: str) -> bool:
    return media_type.lower() in _HTML_TYPES


def is_text(media_type: str) -> bool:
    """A type whose body is text to read as it is (HTML excluded)."""
    media_type = media_type.lower()
    if media_type in _HTML_TYPES:
        return False
    return (
        media_type.startswith("text/")
        or media_type in _TEXT_APPLICATION_TYPES
        or media_type.endswith(("+json", "+xml", "+yaml"))
    )


def page_text(
    data: bytes, media_type: str, charset: str | None, url: str
) -> tuple[str | None, str]:
    """``(title, text)`` of a fetched body; ``title`` is ``None`` when it has none.

    ``media_type`` is the Content-Type without parameters (empty when none was sent: the
    body is then sniffed), ``charset`` its ``charset`` parameter.
    """
    kind = media_type.strip().lower() or _sniff(data)
    if is_html(kind):
        return _html_text(_decode(data, charset, html=True), url)
    if is_text(kind):
        return None, _decode(data, charset, html=False)
    return None, _not_text(kind, len(data), url)


def clip(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars``, with a marker saying how much was left out."""
    if len(text) <= max_chars:
        return text
    cut = len(text) - max_chars
    return (
        f"{text[:max_chars]}\n\n[... {cut} more characters cut: the text has {len(text)} "
        f"characters; ask again with a larger max_chars for more]"
    )


def _html_text(html: str, url: str) -> tuple[str | None, str]:
    page = _VisibleText()
    page.feed(html)
    page.close()
    extracted = trafilatura.extract(
        html,
        url=url or None,
        output_format="markdown",
        # Recall over precision: for a model, some menu text around the article costs
        # less than a missing section.
        favor_recall=True,
        include_comments=False,
        include_tables=True,
        include_images=False,
        include_links=False,
        with_metadata=False,
    )
    text = (extracted or "").strip() or page.text()
    return page.title(), text


def _not_text(media_type: str, size: int, url: str) -> str:
    what = media_type or "of an unknown type"
    return (
        f"[{url} is {what} content ({size} bytes), not a web page or text, so it has no "
        "text to show here. To use it, save it to the drive with download_url and read it "
        "with file_read.]"
    )


def _sniff(data: bytes) -> str:
    """A media type for a body sent without one: HTML, text, or nothing known."""
    head = data[:_SNIFF_BYTES]
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<body" in lowered:
        return "text/html"
    if b"\x00" in head:
        return ""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sniffing window is still UTF-8.
        if exc.start < len(head) - 4:
            return ""
    return "text/plain"


def _decode(data: bytes, charset: str | None, *, html: bool) -> str:
    declared = charset
    if declared is None and html:
        match = _META_CHARSET.search(data[:_SNIFF_BYTES])
        declared = match.group(1).decode("ascii") if match else None
    if declared:
        try:
            codecs.lookup(declared)
        except LookupError:
            declared = None
    if declared:
        return data.decode(declared, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Undeclared and not UTF-8: the web's usual legacy encoding, read as it is.
        return data.decode("cp1252", errors="replace")


class _VisibleText(HTMLParser):
    """The ``<title>`` and every visible piece of text of an HTML document (the fallback
    when trafilatura keeps nothing): script, style and other invisible elements dropped,
    block elements on lines of their own."""

    _HIDDEN: Final = frozenset(
        {"script", "style", "noscript", "template", "svg", "math", "iframe", "object"}
    )
    _BLOCKS: Final = frozenset(
        {
            "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "nav",
            "header", "footer", "aside", "main", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
            "blockquote", "dd", "dt", "dl", "form", "hr", "figcaption", "td", "th",
        }
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._hidden = 0
        self._in_title = False
        self._title: list[str] = []
        self._parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCKS:
            self._parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self._parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title.append(data)
        elif not self._hidden:
            self._parts.append(data)

    def title(self) -> str | None:
        title = " ".join("".join(self._title).split())
        return title or None

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self._parts).splitlines())
        return "\n".join(line for line in lines if line)
