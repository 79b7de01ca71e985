"""``bench/run.py --drive-only`` with a small file and both backends: every transfer is
measured through the API and against the raw store, the download is the bytes uploaded,
the memory of the gateway and the drive is read, the job reads the drive file, and
nothing is left running. Sizes, not timings, are checked."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[3]
NUMBER = re.compile(r"^\d+(\.\d+)?$")
FILE_BYTES = 1_500_000


def _rows(stdout: str) -> list[list[str]]:
    return [
        [c.strip() for c in ln.strip().strip("|").split("|")]
        for ln in stdout.splitlines()
        if ln.startswith("| ") and not ln.startswith("| backend")
    ]


def _row(rows: list[list[str]], backend: str, what: str) -> list[str]:
    for r in rows:
        if r[:2] == [backend, what]:
            return r
    raise AssertionError(f"no row {backend} / {what!r}")


def test_drive_only_bench_measures_both_backends_against_their_raw_store(
    tmp_path: Path,
) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "run.py"),
            "--drive-only",
            "--drive-bytes",
            str(FILE_BYTES),
            "--drive-runs",
            "1",
            "--drive-job-n",
            "3",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=230,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _rows(proc.stdout)
    transfers = {(r[0], r[1]): r[2:] for r in rows if len(r) == 8}
    for backend in ("filesystem", "s3"):
        for what in (
            "API upload, path given (streamed to storage)",
            "API upload, no path (spooled by the drive)",
            "API download, signed URL",
            "raw store upload (PUT)",
            "raw store download (GET)",
        ):
            median, p90 = transfers[(backend, what)][:2]
            assert NUMBER.match(median), f"{backend} {what}: {median!r}"
            assert float(median) > 0
            assert float(p90) > 0
    assert ("s3", "raw store upload (SDK multipart, 5 MiB parts)") in transfers
    assert not any(r[0].startswith("sync no-op job") for r in rows)

    (out,) = tmp_path.glob("*.json")
    res = json.loads(out.read_text())
    assert res["errors"] == []
    assert res["leftover_processes"] == []
    assert res["ours"] == {}
    drive = res["drive"]
    assert drive["file_bytes"] == FILE_BYTES
    for backend in ("filesystem", "s3"):
        api = drive["backends"][backend]["api"]
        assert api["download"]["sha256_checked"] is True
        for kind in ("upload", "upload_spooled", "download"):
            assert api[kind]["runs"] == 1
            memory = api[kind]["memory"]
            assert set(memory) == {"gateway", "drive"}
            assert all(m["peak_mib"] > 0 for m in memory.values())
            assert api[kind]["cpu"]["ms_per_mb"]["drive"] >= 0
    job = drive["backends"]["filesystem"]["job"]
    assert job["job_sees_upload"] is True, job
    assert job["drive_path_ms"]["n"] == job["inline_ms"]["n"] == 3
    assert _row(rows, "filesystem", "added by the drive")
    # On S3 a job's ./drive is the runner's copy of the bucket, synced before the job.
    job = drive["backends"]["s3"]["job"]
    assert job["job_sees_upload"] is True, job
    assert job["drive_path_ms"]["n"] == job["inline_ms"]["n"] == 3
