"""The dashboard cannot be turned into a script injection or a key leak.

Two layers, both checked here. The code: no file of ours under ``dashboard/static``
(the vendored libraries aside) writes HTML from strings, evaluates strings as code, puts
script or style inline in the page, keeps the session anywhere but sessionStorage, or
puts the credential in a URL. The headers: every answer from ``/`` and ``/ui/`` carries a
Content-Security-Policy that allows scripts from the gateway itself only (so an injected
``<script>`` or ``onerror=`` would not run even if the code let one through), forbids
framing, and turns off content sniffing.

The browser tests show the rendering side: a job's output holding ``<script>`` is
shown as text.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from puras_gateway.dashboard import mount_dashboard
from puras_gateway.dashboard.serve import STATIC_DIR

OURS = sorted(
    p
    for p in STATIC_DIR.rglob("*")
    if p.is_file() and "vendor" not in p.relative_to(STATIC_DIR).parts
)
CODE = [p for p in OURS if p.suffix in {".js", ".mjs", ".html"}]

# Each: what it is, and a pattern for it in our own code.
FORBIDDEN_IN_CODE: list[tuple[str, re.Pattern[str]]] = [
    ("an innerHTML/outerHTML assignment", re.compile(r"\b(?:inner|outer)HTML\s*\+?=(?!=)")),
    ("insertAdjacentHTML", re.compile(r"\binsertAdjacentHTML\b")),
    ("document.write", re.compile(r"\bdocument\s*\.\s*write(?:ln)?\b")),
    ("dangerouslySetInnerHTML", re.compile(r"dangerouslySetInnerHTML")),
    ("eval(", re.compile(r"(?<![\w$])eval\s*\(")),
    ("new Function", re.compile(r"\bnew\s+Function\b|(?<![\w.$])Function\s*\(")),
    ("a string timer (eval)", re.compile(r"\bset(?:Timeout|Interval)\s*\(\s*[\"'`]")),
    (
        "a DOMParser/createContextualFragment HTML parse",
        re.compile(r"\bparseFromString\b|\bcreateContextualFragment\b"),
    ),
    ("localStorage (the session lives in sessionStorage only)", re.compile(r"\blocalStorage\b")),
    ("a cookie", re.compile(r"\bdocument\s*\.\s*cookie\b")),
    ("a javascript: URL", re.compile(r"javascript:", re.IGNORECASE)),
    (
        "a credential in a query string",
        re.compile(
            r"[?&](?:token|key|api_key|apikey|access_token|auth|authorization)=", re.IGNORECASE
        ),
    ),
    (
        "a credential set as a URL parameter",
        re.compile(
            r"""\.(?:set|append)\(\s*["'](?:token|key|api_key|access_token|authorization)["']""",
            re.IGNORECASE,
        ),
    ),
    (
        "the token passed to a route or a URL",
        re.compile(
            r"\b(?:navigate|href|location\.(?:hash|href|assign|replace)|new\s+URL|pushState|replaceState)\b[^;\n]*\btoken\b"
        ),
    ),
]

FORBIDDEN_IN_INDEX: list[tuple[str, re.Pattern[str]]] = [
    ("an inline event handler attribute", re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)),
    ("a style attribute", re.compile(r"<[^>]*\sstyle\s*=", re.IGNORECASE)),
    ("a <style> element", re.compile(r"<style\b", re.IGNORECASE)),
    ("an inline script", re.compile(r"<script\b(?![^>]*\ssrc=)[^>]*>", re.IGNORECASE)),
    ("a script with a body", re.compile(r"<script\b[^>]*>\s*[^<\s]", re.IGNORECASE)),
    (
        "a script from another origin",
        re.compile(r"<script\b[^>]*\ssrc=[\"']?(?:https?:)?//", re.IGNORECASE),
    ),
]

# The one place the credential may be used: the Authorization header of the API client,
# the session store and the shell that hands one to the other.
TOKEN_READERS = {"app.js", "lib/api.js", "lib/session.js"}


def _strip_comments(src: str) -> str:
    # Comments explain the rules in the very words the rules forbid.
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.DOTALL)
    src = re.sub(r"<!--.*?-->", "", src, flags=re.DOTALL)
    return re.sub(r"(?m)(^|[^:\"'`\\])//.*$", r"\1", src)


def findings(src: str, rules: list[tuple[str, re.Pattern[str]]]) -> list[str]:
    code = _strip_comments(src)
    return [what for what, pat in rules if pat.search(code)]


def test_the_scan_sees_our_files() -> None:
    names = {p.relative_to(STATIC_DIR).as_posix() for p in CODE}
    assert {"index.html", "app.js", "lib/api.js", "lib/session.js"} <= names


@pytest.mark.parametrize("path", CODE, ids=lambda p: p.relative_to(STATIC_DIR).as_posix())
def test_no_html_from_strings_no_eval_no_leaky_storage(path: Path) -> None:
    assert findings(path.read_text(encoding="utf-8"), FORBIDDEN_IN_CODE) == []


def test_the_page_has_no_inline_script_handler_or_style() -> None:
    index = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    assert findings(index, FORBIDDEN_IN_INDEX) == []
    assert re.search(r'<script type="module" src="/ui/app.js"></script>', index)


def test_only_the_shell_and_the_client_touch_the_credential() -> None:
    readers = {
        p.relative_to(STATIC_DIR).as_posix()
        for p in CODE
        if p.suffix == ".js"
        and re.search(r"\.token\b|\bsessionStorage\b", _strip_comments(p.read_text()))
    }
    assert readers <= TOKEN_READERS
    assert "lib/session.js" in readers


@pytest.mark.parametrize(
    ("snippet", "what"),
    [
        ("el.innerHTML = x;", "an innerHTML/outerHTML assignment"),
        ("el.outerHTML += x;", "an innerHTML/outerHTML assignment"),
        ("el.insertAdjacentHTML('beforeend', x)", "insertAdjacentHTML"),
        ("document.write(x)", "document.write"),
        ("html`<div dangerouslySetInnerHTML=${{__html: x}} />`", "dangerouslySetInnerHTML"),
        ("const f = eval(s);", "eval("),
        ("window.eval (s)", "eval("),
        ("const f = new Function('a', s);", "new Function"),
        ("setTimeout('go()', 10)", "a string timer (eval)"),
        (
            "localStorage.setItem('puras.session', s)",
            "localStorage (the session lives in sessionStorage only)",
        ),
        ("document.cookie = 'k=' + token", "a cookie"),
        ("html`<a href='javascript:go()'>x</a>`", "a javascript: URL"),
        ("fetch(`/v1/jobs?token=${t}`)", "a credential in a query string"),
        ("q.set('token', session.token)", "a credential set as a URL parameter"),
        ("navigate('/jobs', {t: session.token})", "the token passed to a route or a URL"),
        ("location.hash = '#/x/' + token", "the token passed to a route or a URL"),
    ],
)
def test_the_scan_catches_each_pattern(snippet: str, what: str) -> None:
    assert what in findings(snippet, FORBIDDEN_IN_CODE)


@pytest.mark.parametrize(
    "snippet",
    [
        "el.textContent = x; if (a.innerHTML == b) {}",
        "// never set innerHTML = here\nconst a = 1;",
        "const evaluate = (x) => x; retrieval(x);",
        "sessionStorage.setItem(KEY, JSON.stringify(s));",
        "const u = 'https://example.com/a'; // a comment",
        "headers: { Authorization: `Bearer ${token}` }",
    ],
)
def test_the_scan_lets_safe_code_through(snippet: str) -> None:
    assert findings(snippet, FORBIDDEN_IN_CODE) == []


@pytest.mark.parametrize(
    ("page", "what"),
    [
        ('<body onload="go()">', "an inline event handler attribute"),
        ("<img src=x onerror=alert(1)>", "an inline event handler attribute"),
        ('<div style="color:red">', "a style attribute"),
        ("<style>p{}</style>", "a <style> element"),
        ("<script>alert(1)</script>", "an inline script"),
        ('<script type="module" src="/ui/a.js">alert(1)</script>', "a script with a body"),
        ('<script src="https://cdn.example/x.js"></script>', "a script from another origin"),
    ],
)
def test_the_page_scan_catches_each_pattern(page: str, what: str) -> None:
    assert what in findings(page, FORBIDDEN_IN_INDEX)


# -- the headers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    mount_dashboard(app)
    return TestClient(app)


def _csp(value: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


EVERY_FILE = ["/"] + [
    "/ui/" + p.relative_to(STATIC_DIR).as_posix()
    for p in sorted(STATIC_DIR.rglob("*"))
    if p.is_file()
]


@pytest.mark.parametrize("path", EVERY_FILE)
def test_every_answer_carries_the_strict_policy(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    raw = r.headers["content-security-policy"]
    assert "unsafe-inline" not in raw
    assert "unsafe-eval" not in raw
    assert "unsafe-hashes" not in raw
    assert "strict-dynamic" not in raw
    csp = _csp(raw)
    assert csp["script-src"] == ["'self'"]
    assert csp["default-src"] == ["'none'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert "object-src" not in csp or csp["object-src"] == ["'none'"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
