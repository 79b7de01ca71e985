"""Deploy-time validation of a deployment zip (K1-K6, P1, P4).

:func:`validate_bundle` is what the gateway runs on a push: it refuses an unsafe archive
(see :mod:`puras_common.manifest.archive`), discovers every ``skills/<name>/skill.yaml``
and checks each (see :mod:`puras_common.manifest.skill_yaml`), collecting every problem
before it raises once. :func:`extract_bundle` (runner) is re-exported from the archive module.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

import msgspec

from puras_common.manifest.archive import (
    BUNDLE_FILE,
    READ_ERRORS,
    BundleArchive,
    BundleInvalid,
    BundleLimits,
    Problem,
    extract_bundle,
    open_bundle,
    unreadable,
)
from puras_common.manifest.requirements import (
    REQUIREMENTS_FILE,
    RequirementsPolicy,
    check_requirements,
)
from puras_common.manifest.skill_yaml import validate_skill
from puras_common.manifest.spec import SkillSpec

__all__ = [
    "BundleInvalid",
    "BundleLimits",
    "Problem",
    "RequirementsPolicy",
    "ValidatedBundle",
    "extract_bundle",
    "validate_bundle",
]

_SKILL_FILE: Final = re.compile(r"^skills/(?P<name>[^/]+)/skill\.(?P<ext>yaml|yml)$")
_REQUIREMENTS: Final = REQUIREMENTS_FILE


class ValidatedBundle(msgspec.Struct, frozen=True, kw_only=True):
    """What a valid bundle holds, as the deployment events record it."""

    skills: list[SkillSpec]
    """Every discovered skill, sorted by name."""
    requirements_sha256: str | None
    """Hex sha256 of the root ``requirements.txt`` bytes; ``None`` without one (K5)."""
    file_count: int
    """Number of files (folders not counted)."""
    uncompressed_bytes: int
    """Sum of the files' uncompressed sizes."""


def validate_bundle(
    data: bytes,
    limits: BundleLimits = BundleLimits(),  # noqa: B008 - frozen
    *,
    requirements: RequirementsPolicy = RequirementsPolicy(),  # noqa: B008 - frozen
) -> ValidatedBundle:
    """Validates a deployment zip; :class:`BundleInvalid` lists every problem found.

    Never imports or runs anything from the bundle: Python entrypoints are parsed only.
    Every member is read once to its end, so a bundle that validates also extracts.
    ``requirements`` is what a root ``requirements.txt`` may use beyond plain index
    requirements (see :mod:`puras_common.manifest.requirements`).
    """
    archive = open_bundle(data, limits)
    try:
        return _validate(archive, requirements)
    finally:
        archive.close()


class _Files:
    """The :class:`~puras_common.manifest.skill_yaml.BundleFiles` view of an archive."""

    def __init__(self, archive: BundleArchive, contents: dict[str, bytes]) -> None:
        self._archive = archive
        self._contents = contents

    def is_file(self, path: str) -> bool:
        return path in self._archive.files

    def is_dir(self, path: str) -> bool:
        return path in self._archive.dirs

    def read(self, path: str) -> bytes:
        if path not in self._contents:
            self._contents[path] = self._archive.read(path)
        return self._contents[path]


def _validate(archive: BundleArchive, policy: RequirementsPolicy) -> ValidatedBundle:
    problems: list[Problem] = []
    contents: dict[str, bytes] = {}
    yaml_skills: list[str] = []
    yml_only: list[str] = []
    for path in archive.files:
        match = _SKILL_FILE.match(path)
        if match is None:
            continue
        if match["ext"] == "yaml":
            yaml_skills.append(match["name"])
        elif f"skills/{match['name']}/skill.yaml" not in archive.files:
            yml_only.append(path)
    # Integrity first: a member that cannot be read back (bad CRC, truncated data)
    # would otherwise only fail later, in a runner, at extraction.
    keep = {f"skills/{n}/skill.yaml" for n in yaml_skills} | {_REQUIREMENTS}
    for path in archive.files:
        try:
            if path in keep:
                contents[path] = archive.read(path)
            else:
                for _ in archive.iter_chunks(path):
                    pass
        except READ_ERRORS as exc:
            problems.append(unreadable(path, exc))
    if problems:
        raise BundleInvalid(problems)
    for path in sorted(yml_only):
        problems.append(
            Problem(path, None, "skill manifests are named skill.yaml: rename this file")
        )
    if not yaml_skills and not yml_only:
        problems.append(
            Problem(BUNDLE_FILE, None, "bundle has no skills: expected skills/<name>/skill.yaml")
        )
    if _REQUIREMENTS in contents:
        problems.extend(check_requirements(contents[_REQUIREMENTS], policy))
    files = _Files(archive, contents)
    skills: list[SkillSpec] = []
    for name in sorted(yaml_skills):
        spec, found = validate_skill(name, files)
        problems.extend(found)
        if spec is not None:
            skills.append(spec)
    if problems:
        raise BundleInvalid(problems)
    requirements = contents.get(_REQUIREMENTS)
    return ValidatedBundle(
        skills=skills,
        requirements_sha256=hashlib.sha256(requirements).hexdigest()
        if requirements is not None
        else None,
        file_count=len(archive.files),
        uncompressed_bytes=archive.uncompressed_bytes,
    )
