"""Regenerate the settings tables of docs/configuration.md from the settings classes.

    .venv/bin/python scripts/gen_config_docs.py          # rewrite the file
    .venv/bin/python scripts/gen_config_docs.py --check  # exit 1 if it is stale (CI)

The field docstrings are the source; the tables between the markers are generated.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from pathlib import Path

from pydantic import SecretStr

from puras_billing.settings import BillingSettings
from puras_common.settings import ServiceSettings
from puras_drive.settings import DriveSettings
from puras_gateway.settings import GatewaySettings
from puras_runner.settings import RunnerSettings
from puras_scheduler.settings import SchedulerSettings

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"
SERVICES: list[type[ServiceSettings]] = [
    GatewaySettings,
    SchedulerSettings,
    RunnerSettings,
    BillingSettings,
    DriveSettings,
]


def field_docs(cls: type) -> dict[str, str]:
    """The string literal right under each annotated field, through the class's bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, nxt in zip(body, [*body[1:], None], strict=True):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _default(field: object) -> str:
    if getattr(field, "default_factory", None) is not None:
        return "(computed)"
    d = getattr(field, "default", None)
    return "(none)" if isinstance(d, SecretStr) else f"`{d}`"


def render() -> str:
    common = set(ServiceSettings.model_fields)
    cd = field_docs(ServiceSettings)
    out = [
        "### Every service",
        "",
        "| name | default | meaning |",
        "|---|---|---|",
    ]
    for name, f in ServiceSettings.model_fields.items():
        out.append(f"| `PURAS_{name.upper()}` | {_default(f)} | {cd.get(name, '')} |")
    for cls in SERVICES:
        docs = field_docs(cls)
        rows = [(n, f) for n, f in cls.model_fields.items() if n not in common]
        out += ["", f"### {cls.service}", ""]
        if not rows:
            out.append("Nothing beyond the settings of every service.")
            continue
        out += ["| name | default | meaning |", "|---|---|---|"]
        for name, f in rows:
            env = f"PURAS_{cls.service.upper()}_{name.upper()}"
            out.append(f"| `{env}` | {_default(f)} | {docs.get(name, '')} |")
    return "\n".join(out)


def main() -> int:
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{render()}\n{END}{tail}"
    if "--check" in sys.argv:
        if new != text:
            print(f"{DOC} is stale: run scripts/gen_config_docs.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
