"""Skill manifests and deployment bundles: parsing and deploy-time validation (K1-K6, P4).

* :func:`validate_bundle` — the gateway's check of a pushed zip.
* :func:`extract_bundle` — the runner's safe extraction of a deployment.
"""

from puras_common.manifest.archive import (
    BundleInvalid,
    BundleLimits,
    Problem,
    extract_bundle,
)
from puras_common.manifest.bundle import ValidatedBundle, validate_bundle
from puras_common.manifest.requirements import RequirementsPolicy, check_requirements
from puras_common.manifest.skill_yaml import BUILTIN_TOOL_NAMES
from puras_common.manifest.spec import SkillKind, SkillSpec, ToolSpec

__all__ = [
    "BUILTIN_TOOL_NAMES",
    "BundleInvalid",
    "BundleLimits",
    "Problem",
    "RequirementsPolicy",
    "SkillKind",
    "SkillSpec",
    "ToolSpec",
    "ValidatedBundle",
    "check_requirements",
    "extract_bundle",
    "validate_bundle",
]
