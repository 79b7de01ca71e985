"""The views in ``puras_common.views`` are pure folds: importing them loads no I/O."""

from __future__ import annotations

import subprocess
import sys

IO_MODULES = ("nats", "asyncpg", "httpx", "puras_common.bus", "puras_common.projection")


def test_the_views_import_no_io() -> None:
    code = (
        "import sys, pkgutil, importlib, puras_common.views as v\n"
        "for m in pkgutil.iter_modules(v.__path__):\n"
        "    importlib.import_module(f'puras_common.views.{m.name}')\n"
        f"bad = sorted(n for n in sys.modules if n.split('.')[0] in {IO_MODULES[:3]!r} "
        f"or n.startswith({IO_MODULES[3:]!r}))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
