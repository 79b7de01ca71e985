"""A ``requirements.txt`` build in the job sandbox: confine this process, then exec uv.

Executed by path (``python -I build_main.py <config-json>``) as root by the runner, which
places it in the build's cgroup and then writes one line to its stdin ("go"). Standard
library only, like ``template_main``. Installing packages runs code that nobody has
reviewed (sdist build backends), so a build gets what a job gets: the project's uid, no
capabilities, ``no_new_privs``, seccomp, a root filesystem of read-only binds, and a
network namespace whose only way out is the runner's build proxy, which lets it reach the
operator's package indexes and nothing else. It sees the venv being built (read-write, at
``/venv``), the ``requirements.txt`` (read-only), the project's own uv cache and no part
of the runner's environment. Nothing of the host's paths shows in its output.

Config: ``module`` (the jail module's path), ``template`` (the jail, see
``jail.enter_template_jail``), ``report_fd`` (a socket to the runner, which gets the
build's egress listener on it), ``argv`` and ``env`` of uv.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import sys
from typing import Any


def _load(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("_puras_jail", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the sandbox module {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    cfg = json.loads(sys.argv[1])
    if sys.stdin.readline().strip() != "go":
        sys.exit(3)
    jail = _load(cfg["module"])
    jail.prctl(jail.PR_SET_PDEATHSIG, 9)
    confined = jail.enter_template_jail(cfg["template"])
    if confined:
        # Root, outside the build's pid namespace: only wait, and end as the build ends.
        jail.wait_and_mirror(confined)
    os.chdir("/tmp")  # noqa: S108 - the build's own tmpfs
    # The build's egress: a listener in its own network namespace, handed to the runner,
    # which proxies it to the package index only.
    report = socket.socket(fileno=cfg["report_fd"])
    listener = jail.egress_listener()
    socket.send_fds(report, [b"egress"], [listener.fileno()])
    listener.close()
    report.close()
    os.execve(cfg["argv"][0], cfg["argv"], cfg["env"])


if __name__ == "__main__":
    main()
