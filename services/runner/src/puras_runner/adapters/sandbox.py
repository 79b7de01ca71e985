"""The job sandbox's policy: what a template's jail contains, as whom it runs, what the
runner can enforce on this host.

:mod:`puras_runner.jail` carries the steps out inside the template and its children;
this module decides them. A template's jail holds, read-only: the system's ``/usr`` (and
the ``/bin``, ``/lib``... links or folders of the host's layout), a handful of files of
``/etc`` that programs need to resolve names and check TLS certificates, the Python
installation the venvs were built from, the deployment's venv and its bundle; read-write:
the project's drive at ``/drive``. The venv is at ``/venv`` and the bundle at ``/bundle``
(the template starts again inside the jail, so that nothing of the runner's disk layout
shows); the interpreter keeps its host path (its venv names it). Nothing else of the
host is there: not the runner's data dir, other bundles or venvs, other projects'
drives, the runner's ``/proc``, NATS, Postgres or any other service (a network namespace
of its own).

Each project runs under a host uid of its own (``uid_base + hash(project) % uid_span``)
that owns nothing on the host but the project's drive folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

from puras_runner import jail
from puras_runner.adapters import seccomp_filters

__all__ = ["Sandbox", "SandboxUnavailable"]

ETC_FILES: Final = (
    "resolv.conf",
    "hosts",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "services",
    "protocols",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "pki",
    "localtime",
    "timezone",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "mime.types",
    "alternatives",
    "os-release",
    "debian_version",
    "fonts",
    "ImageMagick-6",
    "pip.conf",
)
"""What a job sees of the host's ``/etc`` (where present). Never ``passwd``/``shadow``:
the jail has its own ``passwd`` and ``group`` naming the job's user only."""
TOP_LEVEL: Final = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
"""Merged-/usr links (or real folders on older layouts) reproduced as on the host."""


class SandboxUnavailable(RuntimeError):
    """The host cannot give jobs the sandbox; the runner refuses to run them unconfined."""


class Sandbox:
    """Builds the jail specs of templates and jobs for one runner."""

    def __init__(
        self,
        *,
        drive_root: Path,
        jail_root: Path,
        uid_base: int,
        uid_span: int,
        job_tmpfs_mb: int,
        egress: bool = False,
    ) -> None:
        if os.geteuid() != 0:
            raise SandboxUnavailable(
                "the job sandbox needs the runner to run as root (it creates namespaces, "
                "cgroups and switches each project to an unprivileged uid); run it as root "
                "in its own container, or set PURAS_RUNNER_SANDBOX=off on a development "
                "machine where every job is trusted"
            )
        if uid_base <= 0 or uid_span <= 0 or uid_base + uid_span >= 1 << 31:
            raise SandboxUnavailable("sandbox uid range is invalid")
        self.drive_root = drive_root
        self.jail_root = jail_root
        self.uid_base = uid_base
        self.uid_span = uid_span
        self.job_tmpfs_mb = job_tmpfs_mb
        self.egress = egress
        """Jobs reach the egress proxy (``False``: no network at all)."""
        # Compiled now: a broken libseccomp stops the runner at start, not a job later.
        self._template_bpf = seccomp_filters.template_filter().hex()
        self._job_bpf = seccomp_filters.job_filter().hex()

    def prepare_host(self) -> None:
        """The empty folder every template's new root is mounted on (in its own mount
        namespace, so the host's folder stays empty)."""
        self.jail_root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.jail_root, 0o700)

    def uid_for(self, project_id: str) -> int:
        return jail.job_uid(self.uid_base, self.uid_span, project_id)

    def job_env(self) -> dict[str, str]:
        """What a job's environment gets from the sandbox: the proxy's address."""
        if not self.egress:
            return {}
        proxy = f"http://127.0.0.1:{jail.EGRESS_PORT}"
        return {
            "HTTP_PROXY": proxy,
            "HTTPS_PROXY": proxy,
            "http_proxy": proxy,
            "https_proxy": proxy,
            "NO_PROXY": "localhost,127.0.0.1,::1",
            "no_proxy": "localhost,127.0.0.1,::1",
            "PURAS_EGRESS_PROXY": f"127.0.0.1:{jail.EGRESS_PORT}",
        }

    def project_drive(self, project_id: str) -> Path:
        """The project's drive folder, created and owned by the project's uid."""
        uid = self.uid_for(project_id)
        drive = self.drive_root / project_id
        drive.mkdir(parents=True, exist_ok=True)
        st = drive.stat()
        if st.st_uid != uid or st.st_gid != uid:
            # Files put there by the drive service or an earlier runner: the project's
            # jobs must be able to change and delete them.
            for dirpath, dirnames, filenames in os.walk(drive):
                for name in dirnames + filenames:
                    os.lchown(os.path.join(dirpath, name), uid, uid)
            os.chown(drive, uid, uid)
            os.chmod(drive, 0o770)
        return drive

    def jail_config(
        self,
        *,
        project_id: str,
        deployment_id: str,
        skill: str,
        venv_dir: Path,
        bundle_root: Path,
        python: Path,
        tool_host: Path | None = None,
    ) -> dict[str, Any]:
        """What a template is given to confine itself and its jobs (``template_main``);
        an agentic skill's also shows ``tool_host`` under ``RUNTIME``."""
        script = Path(__file__).resolve().parent.parent / "template_main.py"
        runtime = [script, Path(jail.__file__)]
        if tool_host is not None:
            runtime.append(tool_host)
        return {
            "module": jail.__file__,
            "template": self.template_spec(
                project_id=project_id,
                venv_dir=venv_dir,
                bundle_root=bundle_root,
                python=python,
                runtime=runtime,
            ),
            "job": self.job_spec(),
            "inside": {
                "python": f"{jail.VENV}/bin/python",
                "script": f"{jail.RUNTIME}/{script.name}",
                "module": f"{jail.RUNTIME}/{Path(jail.__file__).name}",
                "bundle_root": jail.BUNDLE,
                "skill_dir": f"{jail.BUNDLE}/skills/{skill}",
                "env": {
                    "PATH": f"{jail.VENV}/bin:/usr/local/bin:/usr/bin:/bin",
                    "LANG": "C.UTF-8",
                    "HOME": "/nonexistent",
                    "PURAS_DEPLOYMENT_ID": deployment_id,
                    "PURAS_DEPLOYMENT_ROOT": jail.BUNDLE,
                    "PURAS_SKILL": skill,
                },
            },
        }

    def template_spec(
        self,
        *,
        project_id: str,
        venv_dir: Path,
        bundle_root: Path,
        python: Path,
        runtime: list[Path],
    ) -> dict[str, Any]:
        """The jail of one (deployment, skill) template (see :func:`jail.enter_template_jail`)."""
        uid = self.uid_for(project_id)
        binds, symlinks = _system(python)
        binds.append([str(venv_dir), jail.VENV, False])
        binds.append([str(bundle_root), jail.BUNDLE, False])
        for path in runtime:
            binds.append([str(path), f"{jail.RUNTIME}/{path.name}", False])
        binds.append([str(self.project_drive(project_id)), "/drive", True])
        passwd = (
            "root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
            f"puras:x:{jail.JOB_UID}:{jail.JOB_UID}:puras job:{jail.JOB_HOME}:/bin/sh\n"
            f"puras-template:x:{uid}:{uid}:puras template:/nonexistent:/usr/sbin/nologin\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        )
        group = f"root:x:0:\npuras:x:{jail.JOB_UID}:\npuras-template:x:{uid}:\nnogroup:x:65534:\n"
        return {
            "root": str(self.jail_root),
            "binds": _dedupe(binds),
            "symlinks": symlinks,
            "files": [["/etc/passwd", passwd], ["/etc/group", group]],
            "uid": uid,
            "gid": uid,
            "hostname": "puras",
            "seccomp": self._template_bpf,
            "tmp_size": "64m",
        }

    def build_config(
        self,
        *,
        project_id: str,
        venv_dir: Path,
        requirements: Path,
        python: Path,
        uv_bin: Path,
        cache_dir: Path,
        report_fd: int,
        index_urls: list[str],
    ) -> dict[str, Any]:
        """What ``build_main`` needs to install ``requirements`` into ``venv_dir`` with uv,
        confined as the project's uid (see the module docstring of ``build_main``)."""
        uid = self.uid_for(project_id)
        binds, symlinks = _system(python)
        binds += [
            [str(venv_dir), jail.VENV, True],
            [str(requirements), "/build/requirements.txt", False],
            [str(uv_bin), f"{jail.RUNTIME}/uv", False],
            [str(cache_dir), "/cache", True],
        ]
        index_args: list[str] = []
        for i, url in enumerate(index_urls):
            index_args += ["--index-url" if i == 0 else "--extra-index-url", url]
        proxy = f"http://127.0.0.1:{jail.EGRESS_PORT}"
        env = {
            "PATH": f"{jail.VENV}/bin:/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "UV_CACHE_DIR": "/cache",
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_NO_PROGRESS": "1",
            "HTTP_PROXY": proxy,
            "HTTPS_PROXY": proxy,
            "ALL_PROXY": proxy,
        }
        # The operator's CA bundle (a TLS-inspecting proxy, a private index), if it is
        # among what the jail shows of /etc.
        for var in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
            value = os.environ.get(var, "")
            if value.startswith(("/etc/ssl/", "/etc/pki/", "/etc/ca-certificates")):
                env[var] = value
        return {
            "module": jail.__file__,
            "template": {
                "root": str(self.jail_root),
                "binds": _dedupe(binds),
                "symlinks": symlinks,
                "files": [
                    [
                        "/etc/passwd",
                        f"root:x:0:0::/nonexistent:/usr/sbin/nologin\nbuild:x:{uid}:{uid}::/tmp:/bin/sh\n",
                    ],
                    ["/etc/group", f"root:x:0:\nbuild:x:{uid}:\n"],
                ],
                "uid": uid,
                "gid": uid,
                "hostname": "puras-build",
                "seccomp": self._template_bpf,
                "tmp_size": f"{self.job_tmpfs_mb}m",
            },
            "report_fd": report_fd,
            "argv": [
                f"{jail.RUNTIME}/uv",
                "pip",
                "install",
                "--no-config",
                "--python",
                f"{jail.VENV}/bin/python",
                *index_args,
                "-r",
                "/build/requirements.txt",
            ],
            "env": env,
            "uid": uid,
        }

    def job_spec(self) -> dict[str, Any]:
        """Each job's own namespaces (see :func:`jail.enter_job_jail`)."""
        return {
            "seccomp": self._job_bpf,
            "job_size": f"{self.job_tmpfs_mb}m",
            "egress": self.egress,
        }


def _system(python: Path) -> tuple[list[list[Any]], list[list[str]]]:
    """What every jail shows of the host, read-only, as (binds, symlinks): ``/usr`` and
    the host's top-level layout, the files of ``/etc`` programs need, and the
    installation the venvs' interpreter runs from (``sys.base_prefix``) unless it is
    under ``/usr`` already."""
    binds: list[list[Any]] = [["/usr", "/usr", False]]
    symlinks: list[list[str]] = []
    for name in TOP_LEVEL:
        host = Path("/") / name
        if host.is_symlink():
            symlinks.append([os.readlink(host), f"/{name}"])
        elif host.is_dir():
            binds.append([str(host), f"/{name}", False])
    for name in ETC_FILES:
        host = Path("/etc") / name
        if host.exists():
            binds.append([str(host.resolve()), f"/etc/{name}", False])
    prefix = Path(os.path.realpath(python)).parent.parent
    if not _under(prefix, Path("/usr")):
        binds.append([str(prefix), str(prefix), False])
    return binds, symlinks


def _under(path: Path, parent: Path) -> bool:
    try:
        path.relative_to(parent)
        return True
    except ValueError:
        return False


def _dedupe(binds: list[list[Any]]) -> list[list[Any]]:
    """Drop binds already covered by an earlier bind of a parent folder (same mode), and
    repeated targets."""
    out: list[list[Any]] = []
    seen: set[str] = set()
    for source, target, writable in binds:
        if target in seen:
            continue
        covered = any(_under(Path(target), Path(t)) and s == t and w == writable for s, t, w in out)
        if covered and source == target:
            continue
        seen.add(target)
        out.append([source, target, writable])
    return out
