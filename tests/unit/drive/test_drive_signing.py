"""Signed file links (D4): what is signed, and every way a link is refused."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from puras_drive.domain.signing import file_url, link_problem, sign

SECRET = b"the-signing-secret"
NOW = 1_800_000_000


def _parts(url: str) -> tuple[str, str, str]:
    q = parse_qs(urlsplit(url).query)
    return urlsplit(url).path, q["expires"][0], q["sig"][0]


def test_a_link_names_the_project_the_encoded_path_and_its_expiry() -> None:
    link = file_url("https://api.example:8443/", SECRET, "p1", "a b/c?#%.png", NOW + 60)
    path, expires, sig = _parts(link.url)
    assert link.url.startswith("https://api.example:8443/v1/drive/file/p1/")
    assert path == "/v1/drive/file/p1/a%20b/c%3F%23%25.png"
    assert (expires, link.expires) == (str(NOW + 60), NOW + 60)
    assert sig == sign(SECRET, "p1", "a b/c?#%.png", NOW + 60)
    assert link_problem(SECRET, "p1", "a b/c?#%.png", expires, sig, NOW) is None


@pytest.mark.parametrize(
    ("project", "path", "expires_delta", "secret"),
    [
        ("p2", "f.txt", 60, SECRET),  # another project
        ("p1", "g.txt", 60, SECRET),  # another file
        ("p1", "f.txt", 61, SECRET),  # a longer life
        ("p1", "f.txt", 60, b"rotated"),  # the secret rotated
    ],
)
def test_a_link_for_anything_else_does_not_verify(
    project: str, path: str, expires_delta: int, secret: bytes
) -> None:
    sig = sign(SECRET, "p1", "f.txt", NOW + 60)
    problem = link_problem(secret, project, path, str(NOW + expires_delta), sig, NOW)
    assert problem is not None
    assert "signature" in problem


def test_an_expired_link_is_refused_even_well_signed() -> None:
    sig = sign(SECRET, "p1", "f.txt", NOW - 1)
    assert "expired" in (link_problem(SECRET, "p1", "f.txt", str(NOW - 1), sig, NOW) or "")


@pytest.mark.parametrize(
    ("expires", "sig"),
    [
        (None, "ab"),
        ("123", None),
        ("", ""),
        ("12e3", "ab"),
        ("-1", "ab"),
        ("1" * 20, "ab"),
        ("١٢", "ab"),
    ],
)
def test_a_malformed_link_is_refused_with_a_message(expires: str | None, sig: str | None) -> None:
    assert link_problem(SECRET, "p1", "f.txt", expires, sig, NOW)


def test_a_signature_with_odd_characters_is_refused_not_raised() -> None:
    assert link_problem(SECRET, "p1", "f.txt", str(NOW + 5), "\udc80é", NOW)


def test_parts_cannot_slide_into_each_other() -> None:
    # Each part is length-prefixed: no part's bytes pass for another's.
    assert sign(SECRET, "p1", "a\nb", 1) != sign(SECRET, "p1\na", "b", 1)
    assert sign(SECRET, "p1", "a", 12) != sign(SECRET, "p1", "a1", 2)
