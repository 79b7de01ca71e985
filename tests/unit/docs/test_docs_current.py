"""Docs that are generated from code must not drift from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_configuration_tables_match_the_settings_classes() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_config_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr


def test_every_doc_the_readme_links_exists() -> None:
    import re

    readme = (ROOT / "README.md").read_text()
    for link in re.findall(r"\]\(((?:docs|examples)/[^)#]*)\)", readme):
        assert (ROOT / link).exists(), f"README links {link}, which does not exist"
