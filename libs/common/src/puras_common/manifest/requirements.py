"""Deploy-time rules of a bundle's ``requirements.txt`` (K5, Z10).

The file is installed on a runner by ``uv pip install -r``, which understands all of
pip's requirement-file language: options that change where packages come from
(``--index-url``, ``--find-links``, ``--trusted-host``), nested files (``-r``, ``-c``),
local paths and direct URLs. On a runner each of those reaches something the bundle
does not own: the runner's own files, hosts of the attacker's choosing, an index
without TLS. So only what resolves through the package index is accepted:

* ``name[extras] <version spec> ; <markers>`` lines (PEP 508), with optional
  ``--hash=...`` options, blank lines and comments;
* ``--index-url`` / ``-i`` / ``--extra-index-url`` naming one of the index URLs the
  operator allows (``PURAS_GATEWAY_ALLOWED_INDEX_URLS``);
* ``name @ <url>`` where the URL starts with a prefix the operator allows
  (``PURAS_GATEWAY_ALLOWED_REQUIREMENT_URLS``); never ``file:``.

Everything else is a :class:`~puras_common.manifest.archive.Problem` naming the line.
Pure: no I/O, nothing is resolved or fetched.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from puras_common.manifest.archive import Problem
from puras_common.textsafety import unsafe_char

__all__ = ["REQUIREMENTS_FILE", "RequirementsPolicy", "check_requirements"]

REQUIREMENTS_FILE: Final = "requirements.txt"

MAX_REQUIREMENTS_BYTES: Final = 256 * 1024

_NAME: Final = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_EXTRAS: Final = rf"\[\s*(?:{_NAME}(?:\s*,\s*{_NAME})*)?\s*\]"
_VERSION_ONE: Final = r"(?:===|==|!=|~=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+"
_VERSIONS: Final = rf"{_VERSION_ONE}(?:\s*,\s*{_VERSION_ONE})*"
# PEP 508 name-based requirement; markers (after ';') are only checked for the
# characters pip itself would accept there, they cannot name a source.
_PLAIN: Final = re.compile(
    rf"^(?P<name>{_NAME})\s*(?:{_EXTRAS})?\s*(?:{_VERSIONS}|\(\s*{_VERSIONS}\s*\))?\s*"
    r"(?:;\s*(?P<markers>[^;]+))?$"
)
_DIRECT: Final = re.compile(rf"^(?P<name>{_NAME})\s*(?:{_EXTRAS})?\s*@\s*(?P<url>\S+)(?:\s*;.*)?$")
# A scheme of two letters or more ("https:", "git+ssh:", "file:"); "C:" is a drive.
_URL: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")
_ARCHIVE: Final = (".whl", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip", ".tar")
_ENV_VAR: Final = re.compile(r"\$\{[A-Za-z0-9_]+\}")
_INDEX_OPTIONS: Final = frozenset({"-i", "--index-url", "--extra-index-url"})
_NESTED_OPTIONS: Final = frozenset({"-r", "--requirement", "-c", "--constraint"})
_LOCAL_OPTIONS: Final = frozenset({"-e", "--editable", "-f", "--find-links"})

_INSTEAD: Final = (
    "name the package as the index publishes it (e.g. requests>=2.31), and put code "
    "of your own in the bundle, where skills import it"
)


@dataclass(frozen=True)
class RequirementsPolicy:
    """What the operator allows beyond plain index requirements (gateway settings)."""

    index_urls: frozenset[str] = field(default_factory=frozenset)
    """URLs ``--index-url`` / ``--extra-index-url`` lines may name (trailing ``/`` ignored)."""
    direct_url_prefixes: tuple[str, ...] = ()
    """Prefixes a ``name @ <url>`` requirement's URL may start with."""

    @classmethod
    def of(
        cls, index_urls: Iterable[str], direct_url_prefixes: Iterable[str]
    ) -> RequirementsPolicy:
        return cls(
            index_urls=frozenset(u.strip().rstrip("/") for u in index_urls if u.strip()),
            direct_url_prefixes=tuple(p.strip() for p in direct_url_prefixes if p.strip()),
        )


def check_requirements(
    data: bytes,
    policy: RequirementsPolicy = RequirementsPolicy(),
    *,
    file: str = REQUIREMENTS_FILE,
) -> list[Problem]:
    """Every problem of a ``requirements.txt``, one per offending line (empty: fine)."""
    if len(data) > MAX_REQUIREMENTS_BYTES:
        return [
            Problem(
                file,
                None,
                f"is {len(data)} bytes; requirements.txt is limited to "
                f"{MAX_REQUIREMENTS_BYTES // 1024} KiB",
            )
        ]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [
            Problem(
                file,
                None,
                f"is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                "save it as UTF-8",
            )
        ]
    problems: list[Problem] = []
    for number, line in _logical_lines(text):
        message = _check_line(line, policy)
        if message is not None:
            problems.append(Problem(file, f"line {number}", message))
    return problems


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """``(first physical line number, text)``: comments dropped, ``\\`` continuations
    joined, blank lines skipped, the way pip reads the file."""
    pending: list[str] = []
    start = 0
    for number, physical in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        # pip: a comment starts at a '#' at the line start or after whitespace.
        stripped = re.sub(r"(^|\s+)#.*$", "", physical)
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        line = " ".join(p.strip() for p in pending).strip()
        pending = []
        if line:
            yield start, line
    if pending and (line := " ".join(p.strip() for p in pending).strip()):
        yield start, line


def _check_line(line: str, policy: RequirementsPolicy) -> str | None:
    found = unsafe_char(line)
    if found is not None:
        return f"contains {found}; remove it"
    if _ENV_VAR.search(line):
        return (
            "uses an environment variable (${...}), which the installer would fill in "
            "from the runner's environment; write the value itself"
        )
    if line.startswith("-"):
        return _check_option(line, policy)
    requirement, _, options = _split_hashes(line)
    if options is not None:
        return options
    shown = requirement if len(requirement) <= 80 else requirement[:79] + "…"
    plain = _PLAIN.match(requirement)
    # pip takes "x.whl" or "x.tar.gz" for a file, although it is also a valid name.
    if plain is not None and not plain["name"].lower().endswith(_ARCHIVE):
        return None
    direct = _DIRECT.match(requirement)
    if direct is not None:
        return _check_direct(direct["name"], direct["url"], policy)
    if _URL.match(requirement) and not requirement.lower().startswith("file:"):
        return (
            f"{shown!r} is a URL: it is fetched from that host, not the package index; {_INSTEAD}"
        )
    if _looks_local(requirement):
        return (
            f"{shown!r} is a local path: the runner installs from the package index "
            f"only, never from files of the bundle or the machine; {_INSTEAD}"
        )
    return (
        f"{shown!r} is not a requirement this platform installs: expected "
        "name[extras] <version spec> ; <markers> (e.g. requests>=2.31,<3)"
    )


def _split_hashes(line: str) -> tuple[str, str | None, str | None]:
    """``(requirement, hashes, problem)``: per-requirement ``--hash`` options are fine,
    any other per-requirement option is not."""
    head, sep, tail = line.partition(" -")
    if not sep:
        return line, None, None
    try:
        words = shlex.split("-" + tail)
    except ValueError as exc:
        return head, None, f"cannot be read: {exc}"
    for word in words:
        if not word.startswith("--hash=") and word != "--hash" and word.startswith("-"):
            return (
                head,
                None,
                (
                    f"the option {word.split('=', 1)[0]} is not accepted on a requirement; "
                    "only --hash=<algorithm>:<digest> is"
                ),
            )
    return head.strip(), tail, None


def _check_option(line: str, policy: RequirementsPolicy) -> str | None:
    try:
        words = shlex.split(line)
    except ValueError as exc:
        return f"cannot be read: {exc}"
    option, _, inline = words[0].partition("=")
    # pip accepts "-ihttps://..." and "-rfile.txt" too.
    if not inline and not option.startswith("--") and len(option) > 2:
        option, inline = option[:2], option[2:]
    value = inline or (words[1] if len(words) > 1 else "")
    if option in _INDEX_OPTIONS:
        if value and value.rstrip("/") in policy.index_urls:
            return None
        allowed = ", ".join(sorted(policy.index_urls)) or "none"
        return (
            f"{option} {value or '<url>'} is not an index this platform allows "
            f"(allowed: {allowed}); remove the line to install from the default index, "
            "or ask the operator to allow it (PURAS_GATEWAY_ALLOWED_INDEX_URLS)"
        )
    if option in _NESTED_OPTIONS:
        return (
            f"{option} {value or '<file>'}: requirements files cannot include or "
            "constrain with other files; list every requirement in requirements.txt itself"
        )
    if option in _LOCAL_OPTIONS:
        what = "a local path" if value and _looks_local(value) else "a source other than the index"
        return (
            f"{option} {value or ''} installs from {what}; the runner installs from the "
            f"package index only: {_INSTEAD}"
        ).replace("  ", " ")
    return (
        f"the option {option} is not accepted in requirements.txt (only requirements, "
        "comments and an allowed --index-url are); remove the line"
    )


def _check_direct(name: str, url: str, policy: RequirementsPolicy) -> str | None:
    if url.lower().startswith("file:") or _looks_local(url):
        return (
            f"{name} @ {url} points at a local file; the runner installs from the "
            f"package index only: {_INSTEAD}"
        )
    if any(url.startswith(prefix) for prefix in policy.direct_url_prefixes):
        return None
    return (
        f"{name} @ {url} is a direct URL: it bypasses the package index, and this "
        "platform allows no such URL (operators allow URL prefixes with "
        f"PURAS_GATEWAY_ALLOWED_REQUIREMENT_URLS); {_INSTEAD}"
    )


def _looks_local(text: str) -> bool:
    if _URL.match(text) and not text.lower().startswith("file:"):
        return False
    return (
        text.startswith((".", "/", "~", "\\"))
        or "/" in text
        or "\\" in text
        or text.lower().startswith("file:")
        or text.lower().endswith(_ARCHIVE)
        or bool(re.match(r"^[A-Za-z]:", text))
    )
