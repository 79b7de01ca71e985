"""The deployment zip of a project folder, as ``puras push`` and the MCP ``push`` send it."""

from puras_bundle.packer import (
    EXCLUDED_NAMES,
    EXCLUDED_SUFFIXES,
    SKILL_YAML,
    PackedBundle,
    PackError,
    pack_project,
)

__all__ = [
    "EXCLUDED_NAMES",
    "EXCLUDED_SUFFIXES",
    "SKILL_YAML",
    "PackError",
    "PackedBundle",
    "pack_project",
]
