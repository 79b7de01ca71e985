"""The documentation pages shipped inside this package, and a BM25 search over them.

Pages are ``purasbackend_mcp/docs/<slug>.md`` (package data): a ``# Title`` first line,
then a ``> one-line summary``, then the body. ``[[slug]]`` in a page names another page.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Final

__all__ = [
    "PAGE_ORDER",
    "DocPage",
    "Hit",
    "Index",
    "UnknownDoc",
    "find_page",
    "index",
    "pages",
    "tokenize",
]

PAGE_ORDER: Final = (
    "overview",
    "quickstart",
    "example-project",
    "concepts",
    "skills",
    "agent-tools",
    "agent-attachments",
    "inputs-and-drive",
    "sdk-media",
    "models-and-pricing",
    "playground",
    "mcp-tools",
    "self-hosting",
)
"""Every page, in reading order (a test checks this matches the files shipped)."""

_STOP_WORDS: Final = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "what",
        "when",
        "where",
        "which",
        "with",
        "you",
        "your",
    ]
)
_WORD: Final = re.compile(r"[a-z0-9]+(?:[_-][a-z0-9]+)*")
_SNIPPET_CHARS: Final = 240


class UnknownDoc(LookupError):
    """No page has that slug; the message lists the slugs."""


@dataclass(frozen=True)
class DocPage:
    slug: str
    title: str
    summary: str
    body: str
    """The whole markdown text of the page, title line included."""


@dataclass(frozen=True)
class Hit:
    slug: str
    title: str
    score: float
    section: str
    """The ``##`` heading above the snippet ("" when it comes before any)."""
    snippet: str


def _normalise(word: str) -> str:
    """A light plural folding, the same for pages and queries (jobs → job, keys → key)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Search terms of ``text``: lower-cased words without stop words, plurals folded.

    A compound such as ``set_output`` or ``image-info`` yields itself and its parts, so
    both ``set_output`` and ``set output`` find it.
    """
    out: list[str] = []
    for m in _WORD.finditer(text.lower()):
        word = m.group()
        if word not in _STOP_WORDS:
            out.append(_normalise(word))
        if "_" in word or "-" in word:
            out.extend(_normalise(p) for p in re.split(r"[_-]", word) if p and p not in _STOP_WORDS)
    return out


def _parse_page(slug: str, text: str) -> DocPage:
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise ValueError(f"docs/{slug}.md must start with a '# Title' line")
    title = lines[0][2:].strip()
    summary = ""
    for line in lines[1:]:
        if line.strip():
            summary = line.strip().removeprefix(">").strip() if line.startswith(">") else ""
            break
    return DocPage(slug=slug, title=title, summary=summary, body=text)


@lru_cache(maxsize=1)
def pages() -> tuple[DocPage, ...]:
    """Every shipped page, in :data:`PAGE_ORDER`."""
    folder = resources.files("purasbackend_mcp").joinpath("docs")
    out = []
    for slug in PAGE_ORDER:
        text = folder.joinpath(f"{slug}.md").read_text(encoding="utf-8")
        out.append(_parse_page(slug, text))
    return tuple(out)


def find_page(slug: str) -> DocPage:
    """The page named ``slug`` (``.md``, case and ``_``/``-`` forgiven), or :class:`UnknownDoc`."""
    wanted = slug.strip().lower().removesuffix(".md").replace("_", "-").strip("[]")
    for page in pages():
        if page.slug == wanted:
            return page
    raise UnknownDoc(
        f"no doc page {slug!r}; the pages are: {', '.join(p.slug for p in pages())} "
        "(list_docs() shows their titles)"
    )


@dataclass(frozen=True)
class _Block:
    section: str
    text: str


def _blocks(body: str) -> list[_Block]:
    """Paragraphs (a fenced code block is one) with the ``##`` heading they sit under."""
    out: list[_Block] = []
    section = ""
    current: list[str] = []
    in_code = False

    def flush() -> None:
        if current:
            out.append(_Block(section, "\n".join(current)))
            current.clear()

    for line in body.splitlines()[1:]:  # the title line is not a snippet
        if line.startswith("```"):
            in_code = not in_code
            current.append(line)
            if not in_code:
                flush()
            continue
        if in_code:
            current.append(line)
            continue
        if line.startswith("#"):
            flush()
            section = line.lstrip("#").strip()
            continue
        if not line.strip():
            flush()
            continue
        current.append(line[2:] if line.startswith("> ") else line)
    flush()
    return out


class Index:
    """Okapi BM25 over whole pages, snippets by paragraph.

    A page's terms are its body plus its title twice more and its ``##`` headings once
    more (so the title counts three times, a heading twice): a page about a thing
    outranks one that mentions it.
    """

    def __init__(self, docs: Sequence[DocPage], *, k1: float = 1.5, b: float = 0.75) -> None:
        self.docs = list(docs)
        self.k1 = k1
        self.b = b
        self._tf: list[Counter[str]] = []
        self._len: list[int] = []
        df: Counter[str] = Counter()
        for d in self.docs:
            headings = " ".join(line for line in d.body.splitlines() if line.startswith("## "))
            terms = tokenize(d.title) * 3 + tokenize(headings) * 2 + tokenize(d.body)
            tf = Counter(terms)
            self._tf.append(tf)
            self._len.append(len(terms))
            df.update(tf.keys())
        n = len(self.docs)
        self._avg_len = (sum(self._len) / n) if n else 0.0
        self._idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self._blocks = [_blocks(d.body) for d in self.docs]

    def idf(self, term: str) -> float:
        return self._idf.get(term, 0.0)

    def score(self, query_terms: Iterable[str], i: int) -> float:
        tf, length = self._tf[i], self._len[i]
        norm = self.k1 * (1 - self.b + self.b * length / self._avg_len) if self._avg_len else 0
        total = 0.0
        for term in set(query_terms):
            f = tf.get(term, 0)
            if f:
                total += self.idf(term) * f * (self.k1 + 1) / (f + norm)
        return total

    def search(self, query: str, limit: int = 5) -> list[Hit]:
        """Pages matching ``query``, best first, at most ``limit``; none for no match."""
        terms = tokenize(query)
        scored = [(self.score(terms, i), i) for i in range(len(self.docs))]
        ranked = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))
        hits = []
        for s, i in ranked[:limit]:
            doc = self.docs[i]
            section, snippet = self._snippet(i, terms)
            hits.append(
                Hit(
                    slug=doc.slug,
                    title=doc.title,
                    score=round(s, 4),
                    section=section,
                    snippet=snippet,
                )
            )
        return hits

    def _snippet(self, i: int, terms: Sequence[str]) -> tuple[str, str]:
        wanted = set(terms)
        best: tuple[float, int] | None = None
        blocks = self._blocks[i]
        for n, block in enumerate(blocks):
            in_heading = wanted & set(tokenize(block.section))
            present = wanted & set(tokenize(block.text)) | in_heading
            # Distinct query terms, rarer ones worth more, a term of the heading above a
            # little more; earlier blocks win ties.
            value = sum(self.idf(t) + 1 for t in present) + 0.5 * len(in_heading)
            if value > 0 and (best is None or value > best[0]):
                best = (value, n)
        if best is None:
            doc = self.docs[i]
            return "", _shorten(doc.summary or doc.body, 0)
        block = blocks[best[1]]
        flat = " ".join(block.text.split())
        return block.section, _shorten(flat, _first_match(flat, wanted))


def _first_match(text: str, terms: set[str]) -> int:
    for m in _WORD.finditer(text.lower()):
        word = m.group()
        parts = [word, *re.split(r"[_-]", word)]
        if any(_normalise(p) in terms for p in parts):
            return m.start()
    return 0


def _shorten(text: str, at: int) -> str:
    """About :data:`_SNIPPET_CHARS` characters of ``text`` around offset ``at``."""
    text = " ".join(text.split())
    if len(text) <= _SNIPPET_CHARS:
        return text
    start = max(0, min(at - _SNIPPET_CHARS // 4, len(text) - _SNIPPET_CHARS))
    if start > 0:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < at else start
    end = start + _SNIPPET_CHARS
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > at else end
    return ("…" if start > 0 else "") + text[start:end].strip() + ("…" if end < len(text) else "")


@lru_cache(maxsize=1)
def index() -> Index:
    """The index of the shipped pages, built once."""
    return Index(pages())
