"""Deploy-time rules of requirements.txt: only what resolves through the package index."""

from __future__ import annotations

import io
import zipfile

import pytest

from puras_common.manifest import BundleInvalid, RequirementsPolicy, validate_bundle
from puras_common.manifest.requirements import check_requirements

INDEX = "https://pypi.internal.example/simple"
POLICY = RequirementsPolicy.of([INDEX], ["https://wheels.internal.example/"])


def problems(text: str | bytes, policy: RequirementsPolicy = POLICY) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [str(p) for p in check_requirements(data, policy)]


@pytest.mark.parametrize(
    "line",
    [
        "requests",
        "requests>=2.31,<3",
        "requests >= 2.31, < 3",
        "Django[argon2,bcrypt]==4.2.*",
        "Django[argon2] (>=4.2)",
        'tomli>=2; python_version < "3.11"',
        "pydantic-core~=2.14 ; platform_machine == 'x86_64'",
        "numpy==1.26.4 --hash=sha256:abcdef --hash=sha256:012345",
        f"--index-url {INDEX}",
        f"--index-url={INDEX}/",
        f"-i {INDEX}",
        f"-i{INDEX}",
        f"--extra-index-url {INDEX}",
        "wheelhouse @ https://wheels.internal.example/w-1.0-py3-none-any.whl",
        "# only a comment",
        "   ",
        "requests  # and a comment",
    ],
)
def test_index_requirements_comments_and_allowed_options_pass(line: str) -> None:
    assert problems(line + "\n") == []


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("./pkg", "local path"),
        ("../x", "local path"),
        ("/abs/pkg", "local path"),
        ("pkg/", "local path"),
        ("~/pkg", "local path"),
        ("pkg-1.0-py3-none-any.whl", "local path"),
        ("pkg-1.0.tar.gz", "local path"),
        ("file:///opt/x.whl", "local path"),
        ("x @ file:///etc/passwd", "local file"),
        ("x @ ./vendored", "local file"),
        ("-e ./pkg", "local path"),
        ("--editable=../pkg", "local path"),
        ("-e git+https://example.com/x.git#egg=x", "other than the index"),
        ("-r base.txt", "other files"),
        ("-rbase.txt", "other files"),
        ("--requirement ../../x.txt", "other files"),
        ("-c /abs/c.txt", "other files"),
        ("--constraint=../c.txt", "other files"),
        ("-i https://evil.example/simple", "PURAS_GATEWAY_ALLOWED_INDEX_URLS"),
        ("--index-url=https://evil.example/simple", "not an index this platform allows"),
        ("--extra-index-url https://pypi.internal.example/other", "allowed: " + INDEX),
        ("--index-url", "not an index"),
        ("-f https://evil.example/wheels", "other than the index"),
        ("--find-links=./wheels", "local path"),
        ("--trusted-host evil.example", "--trusted-host is not accepted"),
        ("--no-index", "--no-index is not accepted"),
        ("--pre", "--pre is not accepted"),
        ("pkg @ https://evil.example/pkg.zip", "direct URL"),
        ("https://evil.example/pkg.whl", "is a URL"),
        ("git+https://evil.example/pkg.git", "is a URL"),
        ("pkg==${PURAS_ADMIN_TOKEN}", "environment variable"),
        ("pkg --install-option=--prefix=/", "only --hash"),
        ("pkg 'unterminated", "not a requirement"),
        ("a\x00b", "NUL"),
        ("not a requirement at all", "not a requirement"),
    ],
)
def test_lines_outside_the_index_are_refused_naming_the_line(line: str, fragment: str) -> None:
    found = problems("requests\n\n" + line + "\n")
    assert len(found) == 1, found
    assert found[0].startswith("requirements.txt: line 3: "), found
    assert fragment in found[0], found


def test_continuation_lines_are_joined_and_numbered_from_their_first_line() -> None:
    assert problems("numpy==1.26.4 \\\n    --hash=sha256:abc\n") == []
    found = problems("ok\n-r \\\n   base.txt\n")
    assert len(found) == 1
    assert found[0].startswith("requirements.txt: line 2: -r base.txt")


def test_without_an_operator_policy_no_index_or_url_is_allowed() -> None:
    assert problems(f"--index-url {INDEX}\n", RequirementsPolicy())
    assert problems("w @ https://wheels.internal.example/w.whl\n", RequirementsPolicy())


def test_the_file_must_be_utf8_and_small() -> None:
    assert "UTF-8" in problems(b"requests\n\xff\n")[0]
    assert problems(b"\xef\xbb\xbfrequests\n") == []  # a BOM is fine
    assert "limited" in problems(b"a\n" * 200_000)[0]


def test_validate_bundle_reports_requirements_with_the_skill_problems() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("skills/x/skill.yaml", "entrypoint: main.py:run\n")
        zf.writestr("skills/x/main.py", "def run(inputs):\n    return {}\n")
        zf.writestr("requirements.txt", "requests\n-e ./mine\n")
    with pytest.raises(BundleInvalid) as ei:
        validate_bundle(buf.getvalue())
    [p] = ei.value.problems
    assert (p.file, p.field) == ("requirements.txt", "line 2")
