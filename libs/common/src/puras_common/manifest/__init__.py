"""Skill manifests and deployment bundles: parsing and deploy-time validation (K1-K6, P4)."""

from puras_common.manifest.spec import SkillKind, SkillSpec, ToolSpec

__all__ = ["SkillKind", "SkillSpec", "ToolSpec"]
