"""The drive's throughput and what it costs a job (``./dev bench --drive-only``).

For each storage backend (the local filesystem; S3 on a moto server on loopback, started
here as the tests start theirs), on a dev stack of its own:

- **upload**: a file just under the 50 MiB cap (random bytes, written to disk first and
  streamed from there by httpx's multipart encoder, never built in memory) through
  ``POST /v1/drive/upload`` on the gateway, which forwards it to the drive. Twice: with
  a ``path`` field before the file (the drive streams it straight to storage), and
  without one (the drive must spool it to a temporary file until the form ends, then
  store it under ``uploads/``). MB/s = 10^6 bytes per second of the whole request.
- **download**: the same file through a signed URL (``GET /v1/drive/sign``, then ``GET``
  of the URL, streamed and counted; the first fetch, untimed, checks the SHA-256).
- **memory**: the peak resident set of the gateway and the drive over each upload and
  download. The kernel's high-water mark (``VmHWM``) is reset before each transfer
  (``/proc/<pid>/clear_refs`` ``5``) and read after it; ``VmRSS`` is also sampled every
  5 ms, the figure where the reset is not allowed. Against the resident set before the
  transfer: a process that held the file would grow by 50 MB. Figures in MiB.
- **CPU** of the gateway, the drive, the store (moto, or the plain server) and this
  client over each measure's timed runs, in ms per MB moved, from ``/proc`` (as the
  rest of the bench counts it): on two cores, where a transfer's time goes.
- **the raw store** in the same run, with the same client code: on the filesystem a
  plain HTTP file server (:mod:`puras_bench.plain_store`, ``PUT`` + ``GET``, stored as
  the drive stores: 1 MiB writes, fsync, rename); on S3 moto itself, a presigned ``PUT``
  and ``GET`` through httpx, and the multipart upload of 5 MiB parts the drive's S3
  adapter makes, through the same SDK (minio). What is left is what the API adds.
- **the cost to a job**: p50/p95 of a sync job (``?wait=true``) of the bench skill
  ``drive_read``, which ``load_bytes`` its input and returns its size and digest, given a
  1 KiB uploaded file as ``{"drive_path": ...}`` and the same bytes inline as
  ``{"data": <base64>}``, the two alternating so drift hits both alike. On S3 the
  runner's ``./drive`` is a copy kept in step with the bucket, so this includes that
  step; if a job does not see the upload at all, that is recorded instead.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import httpx

from puras_bench.agent_loop import latency_with_p95
from puras_bench.ours import OurStack, started_stack
from puras_bench.procstat import CpuMeter
from puras_bench.stats import pct
from puras_cli.infra.ports import free_port, wait_for_port

__all__ = ["BACKENDS", "DEFAULT_FILE_BYTES", "DrivePlan", "drive_table", "measure_drive"]

Log = Callable[[str], None]

BACKENDS: Final = ("filesystem", "s3")
DEFAULT_FILE_BYTES: Final = 50 * 1024 * 1024 - 64 * 1024
"""50 MiB less 64 KiB: under the drive's 50 MiB cap with the form's framing around it."""
SMALL_FILE_BYTES: Final = 1024
CHUNK: Final = 1024 * 1024
MB: Final = 1_000_000
S3_ACCESS_KEY: Final = "puras-bench-access"
S3_SECRET_KEY: Final = "puras-bench-secret-key"  # noqa: S105 - a loopback moto of its own
S3_BUCKET: Final = "puras-bench-drive"
MOTO_START_S: Final = 90.0
"""moto imports every AWS service model at start: slow on a busy machine."""
WATCHED: Final = ("gateway", "drive")


@dataclass(frozen=True)
class DrivePlan:
    file_bytes: int = DEFAULT_FILE_BYTES
    runs: int = 5
    """Timed transfers per measure (one more, untimed, warms up and checks)."""
    job_n: int = 200
    """Sync jobs per input shape for the cost to a job."""
    job_warmup: int = 20
    backends: tuple[str, ...] = BACKENDS


# -- memory -------------------------------------------------------------------------------


def _status_kb(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(key.encode() + b":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakRss:
    """Peak resident memory (KiB) of some processes over a block: the kernel's
    high-water mark reset at the start where allowed, and ``VmRSS`` sampled meanwhile."""

    def __init__(self, pids: dict[str, int], every_s: float = 0.005) -> None:
        self._pids = pids
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-rss", daemon=True)
        self.before: dict[str, int | None] = {}
        self.sampled: dict[str, int] = {}
        self.hwm: dict[str, int | None] = {}
        self.hwm_reset: dict[str, bool] = {}

    def __enter__(self) -> PeakRss:
        for name, pid in self._pids.items():
            self.before[name] = _status_kb(pid, "VmRSS")
            self.sampled[name] = self.before[name] or 0
            try:
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("5")  # resets VmHWM to the current VmRSS (Linux 4.0+)
                self.hwm_reset[name] = True
            except OSError:
                self.hwm_reset[name] = False
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for name, pid in self._pids.items():
            self.hwm[name] = _status_kb(pid, "VmHWM") if self.hwm_reset[name] else None

    def _sample(self) -> None:
        while not self._stop.wait(self._every):
            for name, pid in self._pids.items():
                rss = _status_kb(pid, "VmRSS")
                if rss is not None and rss > self.sampled[name]:
                    self.sampled[name] = rss

    def peak_kb(self, name: str) -> int:
        """The best figure there is: the high-water mark, else the sampled peak."""
        hwm = self.hwm.get(name)
        return max(hwm or 0, self.sampled[name])

    def summary(self) -> dict[str, dict[str, Any]]:
        return {
            name: {
                "rss_before_kb": self.before[name],
                "peak_kb": self.peak_kb(name),
                "hwm_kb": self.hwm.get(name),
                "sampled_peak_kb": self.sampled[name],
                "growth_kb": self.peak_kb(name) - (self.before[name] or 0),
            }
            for name in self._pids
        }


# -- one measure ---------------------------------------------------------------------------


@dataclass
class Transfers:
    """Timed transfers of one kind: seconds each, the memory over each, the CPU over all."""

    size: int
    seconds: list[float] = field(default_factory=list)
    memory: list[dict[str, dict[str, Any]]] = field(default_factory=list)
    cpu: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        secs = sorted(self.seconds)
        out: dict[str, Any] = {
            "bytes": self.size,
            "runs": len(secs),
            "seconds": [round(s, 4) for s in self.seconds],
            "median_mb_s": round(self.size / pct(secs, 50) / MB, 1),
            # The slow tail: the throughput 90% of the runs beat (the p90 of the time).
            "p90_mb_s": round(self.size / pct(secs, 90) / MB, 1),
            "median_s": round(pct(secs, 50), 4),
        }
        if self.cpu:
            out["cpu"] = self.cpu
        if self.memory:
            first = self.memory[0]
            out["memory"] = {
                name: {
                    "peak_mib": round(max(m[name]["peak_kb"] for m in self.memory) / 1024, 1),
                    "max_growth_mib": round(
                        max(m[name]["growth_kb"] for m in self.memory) / 1024, 1
                    ),
                    "growth_mib_per_run": [
                        round(m[name]["growth_kb"] / 1024, 1) for m in self.memory
                    ],
                    "rss_before_mib": round((first[name]["rss_before_kb"] or 0) / 1024, 1),
                    "hwm_reset": first[name]["hwm_kb"] is not None,
                }
                for name in first
            }
        return out


def _cpu_per_mb(meter: CpuMeter, client_s: float, moved: int) -> dict[str, Any]:
    """CPU ms per MB moved, by process (children included) and for this client; and the
    share of the machine's CPU time busy outside them: the kernel's own work for the
    transfer (page-cache writeback, kernel threads), the stack's other services, and any
    other tenant of the machine. A caveat, not a figure of the drive."""
    mbs = moved / MB
    per = {k: round(v * 1000 / mbs, 2) for k, v in meter.used.items()}
    per["bench client"] = round(client_s * 1000 / mbs, 2)
    other = None
    if meter.machine_total_s:
        rest = meter.machine_busy_s - sum(meter.used.values()) - client_s
        other = round(max(0.0, rest) / meter.machine_total_s, 3)
    return {"ms_per_mb": per, "cpu_elsewhere": other}


def _timed(
    runs: int,
    size: int,
    once: Callable[[int], None],
    pids: dict[str, int] | None,
    check_first: Callable[[], None] | None = None,
    cpu_of: dict[str, int] | None = None,
) -> Transfers:
    """``runs`` timed calls of ``once(i)`` after one untimed (``i = -1``); the memory of
    ``pids`` over each, the CPU of ``cpu_of`` (and of this process) over them all."""
    once(-1)
    if check_first is not None:
        check_first()
    got = Transfers(size)
    t_self = os.times()
    with CpuMeter(cpu_of or {}) as cpu:
        for i in range(runs):
            meter = PeakRss(pids) if pids else None
            with meter if meter is not None else contextlib.nullcontext():
                t0 = time.perf_counter()
                once(i)
                got.seconds.append(time.perf_counter() - t0)
            if meter is not None:
                got.memory.append(meter.summary())
    t_after = os.times()
    client_s = (t_after.user - t_self.user) + (t_after.system - t_self.system)
    got.cpu = _cpu_per_mb(cpu, client_s, size * runs)
    return got


def _expect(r: httpx.Response, what: str, status: int = 200) -> Any:
    if r.status_code != status:
        raise RuntimeError(f"{what} answered {r.status_code}: {r.text[:500]}")
    return r.json() if r.headers.get("content-type", "").startswith("application/json") else None


def _download(http: httpx.Client, url: str, size: int, digest: hashlib._Hash | None) -> None:
    with http.stream("GET", url) as r:
        if r.status_code != 200:
            r.read()
            raise RuntimeError(f"GET of the signed URL answered {r.status_code}: {r.text[:500]}")
        got = 0
        for chunk in r.iter_raw(CHUNK):
            got += len(chunk)
            if digest is not None:
                digest.update(chunk)
    if got != size:
        raise RuntimeError(f"the download gave {got} bytes, not {size}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _write_random(path: Path, size: int) -> None:
    with path.open("wb") as f:
        left = size
        while left:
            n = min(CHUNK, left)
            f.write(os.urandom(n))
            left -= n


# -- our side ------------------------------------------------------------------------------


def _api_transfers(
    ours: OurStack, big: Path, size: int, plan: DrivePlan, log: Log, store: Store | None
) -> dict[str, Any]:
    pids = {k: v for k, v in ours.pids().items() if k in WATCHED}
    cpu_of = {**pids, **({store.name: store.pid} if store is not None else {})}
    out: dict[str, Any] = {"pids": pids}
    want = _sha256(big)
    with httpx.Client(base_url=ours.stack.api_base, headers=ours.auth, timeout=180) as http:

        def upload(path: str | None) -> dict[str, Any]:
            with big.open("rb") as f:
                r = http.post(
                    "/v1/drive/upload",
                    # httpx sends the form fields before the files: the path arrives first.
                    data={"path": path} if path is not None else None,
                    files={"file": ("big.bin", f, "application/octet-stream")},
                )
            body = _expect(r, "POST /v1/drive/upload")
            if body["bytes"] != size:
                raise RuntimeError(f"the upload stored {body['bytes']} bytes, not {size}")
            return dict(body)

        log(f"    upload with a path (streamed to storage): {plan.runs} x {size / MB:.1f} MB")

        def upload_to_path(_i: int) -> None:
            upload("bench/big.bin")

        up = _timed(plan.runs, size, upload_to_path, pids, cpu_of=cpu_of)
        out["upload"] = up.summary()
        log(f"      {_line(out['upload'])}")

        spooled: list[str] = []

        def upload_spooled(_i: int) -> None:
            spooled.append(upload(None)["drive_path"])

        log("    upload without a path (the drive spools it first)")
        sp = _timed(plan.runs, size, upload_spooled, pids, cpu_of=cpu_of)
        out["upload_spooled"] = sp.summary()
        log(f"      {_line(out['upload_spooled'])}")
        for p in spooled:
            _expect(http.delete("/v1/drive/object", params={"path": p}), "DELETE /v1/drive/object")

        signed = _expect(
            http.get("/v1/drive/sign", params={"path": "bench/big.bin", "ttl": "3600"}),
            "GET /v1/drive/sign",
        )
        url = signed["url"]
        digest = hashlib.sha256()

        def check() -> None:
            if digest.hexdigest() != want:
                raise RuntimeError("the signed URL served other bytes than were uploaded")

        log("    download through the signed URL")
        first = [True]

        def download(_i: int) -> None:
            _download(http, url, size, digest if first[0] else None)
            first[0] = False

        dl = _timed(plan.runs, size, download, pids, check_first=check, cpu_of=cpu_of)
        out["download"] = dl.summary()
        out["download"]["sha256_checked"] = True
        log(f"      {_line(out['download'])}")
    return out


def _job_cost(ours: OurStack, plan: DrivePlan, log: Log) -> dict[str, Any]:
    small = os.urandom(SMALL_FILE_BYTES)
    want = {"bytes": len(small), "sha256": hashlib.sha256(small).hexdigest()}
    by_shape: dict[str, dict[str, Any]] = {
        "drive_path": {"file": {"drive_path": "bench/one-kib.bin"}},
        "inline": {"file": {"data": base64.b64encode(small).decode()}},
    }
    with httpx.Client(base_url=ours.stack.api_base, headers=ours.auth, timeout=90) as http:
        _expect(
            http.post(
                "/v1/drive/upload",
                data={"path": "bench/one-kib.bin"},
                files={"file": ("one-kib.bin", small, "application/octet-stream")},
            ),
            "POST /v1/drive/upload (1 KiB)",
        )

        def job(shape: str) -> tuple[float, dict[str, Any]]:
            t0 = time.perf_counter()
            r = http.post(
                "/v1/jobs",
                params={"wait": "true", "timeout": "60"},
                json={"skill": "drive_read", "inputs": by_shape[shape]},
            )
            dt = time.perf_counter() - t0
            return dt, _expect(r, "POST /v1/jobs?wait=true")

        # A job's ./drive is the runner's copy of the project's drive: with a backend it
        # does not mirror, the upload is not there, which is a finding, not a crash.
        _, got = job("drive_path")
        if got.get("status") != "succeeded" or got.get("result") != want:
            log("    a job reading the uploaded file does not see it")
            return {
                "job_sees_upload": False,
                "status": got.get("status"),
                "error": str(got.get("error") or "").split("\n", 1)[0],
            }

        samples: dict[str, list[float]] = {"drive_path": [], "inline": []}
        log(
            f"    cost to a job: {plan.job_n} sync jobs per shape after {plan.job_warmup}, "
            "drive path and inline alternating"
        )
        for i in range(plan.job_warmup + plan.job_n):
            for shape in ("drive_path", "inline") if i % 2 == 0 else ("inline", "drive_path"):
                dt, got = job(shape)
                if got.get("status") != "succeeded" or got.get("result") != want:
                    raise RuntimeError(f"drive_read ({shape}) ended {got.get('status')}: {got}")
                if i >= plan.job_warmup:
                    samples[shape].append(dt)
    out: dict[str, Any] = {
        "job_sees_upload": True,
        "file_bytes": SMALL_FILE_BYTES,
        "drive_path_ms": latency_with_p95(samples["drive_path"]),
        "inline_ms": latency_with_p95(samples["inline"]),
    }
    out["p50_added_ms"] = round(out["drive_path_ms"]["p50_ms"] - out["inline_ms"]["p50_ms"], 3)
    out["p95_added_ms"] = round(out["drive_path_ms"]["p95_ms"] - out["inline_ms"]["p95_ms"], 3)
    log(
        f"      drive path p50 {out['drive_path_ms']['p50_ms']:.2f} ms p95 "
        f"{out['drive_path_ms']['p95_ms']:.2f}; inline p50 {out['inline_ms']['p50_ms']:.2f} "
        f"ms p95 {out['inline_ms']['p95_ms']:.2f}"
    )
    return out


def _line(s: dict[str, Any]) -> str:
    line = f"median {s['median_mb_s']} MB/s, p90 {s['p90_mb_s']} MB/s"
    for name, m in s.get("memory", {}).items():
        line += f"; {name} peak {m['peak_mib']} MiB (+{m['max_growth_mib']})"
    cpu = s.get("cpu", {}).get("ms_per_mb", {})
    if cpu:
        line += "; CPU ms/MB " + ", ".join(f"{k} {v}" for k, v in cpu.items())
    return line


# -- the raw stores ------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    """A raw store's server: where it listens, and its process (for its CPU)."""

    name: str
    url: str
    pid: int


@contextlib.contextmanager
def _process(
    argv: list[str], port: int, log_file: Path, what: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log_file.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    try:
        wait_for_port(port, timeout=MOTO_START_S, proc=proc, what=what)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def plain_store(work: Path) -> Iterator[Store]:
    """The plain HTTP file server over ``work/store``, serving."""
    port = free_port()
    script = Path(__file__).with_name("plain_store.py")
    argv = [sys.executable, str(script), "--root", str(work / "store"), "--port", str(port)]
    with _process(argv, port, work / "plain_store.log", "plain HTTP file server") as proc:
        yield Store("plain server", f"http://127.0.0.1:{port}", proc.pid)


@contextlib.contextmanager
def moto_server(work: Path) -> Iterator[Store]:
    """moto's S3 server on a free loopback port, serving."""
    port = free_port()
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    log_file = work / "moto.log"
    with _process(argv, port, log_file, "moto server", env) as proc:
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + MOTO_START_S
        while True:  # a listening port may not serve yet: each request is the condition
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2) as reply:  # noqa: S310 - loopback
                    if reply.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto server not serving; see {log_file}")
            time.sleep(0.05)
        yield Store("moto", endpoint, proc.pid)


def _plain_transfers(store: Store, big: Path, size: int, runs: int) -> dict[str, Any]:
    cpu_of = {store.name: store.pid}
    with httpx.Client(base_url=store.url, timeout=180) as http:

        def put(_i: int) -> None:
            with big.open("rb") as f:
                r = http.put("/big.bin", content=f, headers={"Content-Length": str(size)})
            _expect(r, "plain PUT", 201)

        up = _timed(runs, size, put, None, cpu_of=cpu_of)
        dl = _timed(
            runs, size, lambda _i: _download(http, "/big.bin", size, None), None, cpu_of=cpu_of
        )
    return {"upload": up.summary(), "download": dl.summary()}


def _s3_transfers(store: Store, big: Path, size: int, runs: int) -> dict[str, Any]:
    from minio import Minio

    cpu_of = {store.name: store.pid}
    s3 = Minio(
        store.url.removeprefix("http://"),
        access_key=S3_ACCESS_KEY,
        secret_key=S3_SECRET_KEY,
        secure=False,
    )
    key = "raw/big.bin"
    put_url = s3.presigned_put_object(S3_BUCKET, key, expires=timedelta(hours=1))
    with httpx.Client(timeout=180) as http:

        def put(_i: int) -> None:
            with big.open("rb") as f:
                r = http.put(put_url, content=f, headers={"Content-Length": str(size)})
            if r.status_code != 200:
                raise RuntimeError(
                    f"presigned PUT to moto answered {r.status_code}: {r.text[:300]}"
                )

        up = _timed(runs, size, put, None, cpu_of=cpu_of)
        get_url = s3.presigned_get_object(S3_BUCKET, key, expires=timedelta(hours=1))
        dl = _timed(
            runs, size, lambda _i: _download(http, get_url, size, None), None, cpu_of=cpu_of
        )

    def multipart(_i: int) -> None:
        # The drive's S3 adapter's shape: a multipart upload of 5 MiB parts.
        s3.fput_object(S3_BUCKET, "raw/multipart.bin", str(big), part_size=5 * 1024 * 1024)

    mp = _timed(runs, size, multipart, None, cpu_of=cpu_of)
    return {"upload": up.summary(), "download": dl.summary(), "upload_multipart": mp.summary()}


# -- the whole measure ---------------------------------------------------------------------


def measure_drive(plan: DrivePlan, log: Log, env: dict[str, str] | None = None) -> dict[str, Any]:
    unknown = [b for b in plan.backends if b not in BACKENDS]
    if unknown:
        raise ValueError(f"no drive backend {unknown[0]!r}; pick from {', '.join(BACKENDS)}")
    work = Path(tempfile.mkdtemp(prefix="puras-bench-drive-"))
    out: dict[str, Any] = {
        "file_bytes": plan.file_bytes,
        "runs": plan.runs,
        "mb": "10^6 bytes",
        "client": "httpx.Client (sync), one connection, file streamed from disk",
        "backends": {},
        "errors": [],
    }
    try:
        big = work / "big.bin"
        _write_random(big, plan.file_bytes)
        for backend in plan.backends:
            log(f"(g) drive, {backend} backend")
            # One backend failing (its stack did not start) leaves the other's figures.
            try:
                out["backends"][backend] = _one_backend(backend, work, big, plan, log, env)
            except Exception as exc:
                out["backends"][backend] = {"error": repr(exc)}
                out["errors"].append(f"{backend}: {exc!r}")
                log(f"    the {backend} backend was not measured: {exc!r}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _one_backend(
    backend: str, work: Path, big: Path, plan: DrivePlan, log: Log, env: dict[str, str] | None
) -> dict[str, Any]:
    if backend == "filesystem":
        return _measure_backend(work, big, plan, log, env)
    with moto_server(work) as moto:
        s3_env = {
            "PURAS_DRIVE_STORAGE": "s3",
            "PURAS_DRIVE_S3_ENDPOINT": moto.url,
            "PURAS_DRIVE_S3_BUCKET": S3_BUCKET,
            "PURAS_DRIVE_S3_ACCESS_KEY": S3_ACCESS_KEY,
            "PURAS_DRIVE_S3_SECRET_KEY": S3_SECRET_KEY,
            "PURAS_DRIVE_S3_CREATE_BUCKET": "true",
        }
        return _measure_backend(work, big, plan, log, {**(env or {}), **s3_env}, moto)


def _measure_backend(
    work: Path,
    big: Path,
    plan: DrivePlan,
    log: Log,
    env: dict[str, str] | None,
    moto: Store | None = None,
) -> dict[str, Any]:
    size = plan.file_bytes
    res: dict[str, Any] = {}
    with started_stack(dict(env or {}), log) as ours:
        res["api"] = _api_transfers(ours, big, size, plan, log, moto)
        res["job"] = _job_cost(ours, plan, log)
        # The raw store after the stack's measures, with the stack idle (still up: an S3
        # bucket the drive made is where the raw objects go too).
        if moto is None:
            log("    the raw store: a plain HTTP file server (PUT + GET)")
            with plain_store(work) as plain:
                res["raw"] = _plain_transfers(plain, big, size, plan.runs)
            res["raw"]["what"] = "plain HTTP file server (stdlib, fsync + rename), PUT/GET"
        else:
            log("    the raw store: moto directly (presigned PUT/GET, SDK multipart)")
            res["raw"] = _s3_transfers(moto, big, size, plan.runs)
            res["raw"]["what"] = "moto S3: presigned PUT/GET (httpx), multipart 5 MiB (minio)"
        for k, v in res["raw"].items():
            if isinstance(v, dict):
                log(f"      raw {k}: {_line(v)}")
    return res


# -- the table -----------------------------------------------------------------------------


def _share(v: float | None) -> str:
    return "—" if v is None else f"{v:.0%}"


def drive_table(d: dict[str, Any]) -> str:
    """Markdown: per backend, the API's transfers beside the raw store's, then the job."""
    size = d["file_bytes"] / MB
    lines = [
        f"Drive: a {size:.1f} MB file ({d['file_bytes']} bytes), {d['runs']} timed runs each "
        "(MB = 10^6 bytes)",
        "",
        "| backend | transfer | median MB/s | p90 MB/s | gateway peak RSS (growth) MiB "
        "| drive peak RSS (growth) MiB | CPU ms/MB: gateway / drive / store / client "
        "| CPU elsewhere |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def mem(s: dict[str, Any], name: str) -> str:
        m = s.get("memory", {}).get(name)
        return f"{m['peak_mib']} (+{m['max_growth_mib']})" if m else "—"

    def cpu(s: dict[str, Any]) -> str:
        per = s.get("cpu", {}).get("ms_per_mb", {})
        store = per.get("moto", per.get("plain server"))
        cells = [per.get("gateway"), per.get("drive"), store, per.get("bench client")]
        return " / ".join("—" if v is None else f"{v:.1f}" for v in cells)

    for backend, b in d["backends"].items():
        if "error" in b:
            lines.append(f"| {backend} | not measured: {b['error'][:200]} | | | | | | |")
            continue
        api, raw = b["api"], b["raw"]
        rows = [
            ("API upload, path given (streamed to storage)", api["upload"]),
            ("API upload, no path (spooled by the drive)", api["upload_spooled"]),
            ("API download, signed URL", api["download"]),
            ("raw store upload (PUT)", raw["upload"]),
        ]
        if "upload_multipart" in raw:
            rows.append(("raw store upload (SDK multipart, 5 MiB parts)", raw["upload_multipart"]))
        rows.append(("raw store download (GET)", raw["download"]))
        for what, s in rows:
            lines.append(
                f"| {backend} | {what} | {s['median_mb_s']} | {s['p90_mb_s']} "
                f"| {mem(s, 'gateway')} | {mem(s, 'drive')} | {cpu(s)} "
                f"| {_share(s.get('cpu', {}).get('cpu_elsewhere'))} |"
            )
    lines += [
        "",
        "| backend | sync job of `drive_read`, 1 KiB file | p50 ms | p95 ms |",
        "|---|---|---|---|",
    ]
    for backend, b in d["backends"].items():
        if "error" in b:
            continue
        j = b["job"]
        if "drive_path_ms" in j:
            lines.append(
                f"| {backend} | `{{drive_path}}` | {j['drive_path_ms']['p50_ms']:.2f} "
                f"| {j['drive_path_ms']['p95_ms']:.2f} |"
            )
            lines.append(
                f"| {backend} | inline `{{data}}` | {j['inline_ms']['p50_ms']:.2f} "
                f"| {j['inline_ms']['p95_ms']:.2f} |"
            )
            lines.append(
                f"| {backend} | added by the drive | {j['p50_added_ms']:.2f} "
                f"| {j['p95_added_ms']:.2f} |"
            )
        else:
            lines.append(
                f"| {backend} | a job reading the uploaded file does not see it "
                f"({j.get('status')}) | — | — |"
            )
    return "\n".join(lines)
