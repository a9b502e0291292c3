"""bench/gpu_check.py runs on the CPU (--quick), so it is known to work before a GPU is lent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_on_the_cpu(tmp_path):
    out = tmp_path / "check.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--device", "cpu", "--quick",
                             "--out", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert (report["device"], report["quick"]) == ("cpu", True)
    rows = report["throughput"]
    assert [(r["resolution"], r["amp"], r["channels_last"]) for r in rows] == [
        (res, amp, cl) for amp in (False, True) for cl in (False, True) for res in (4, 8, 16)]
    assert all(r["images_per_sec"] > 0 and r["peak_mib"] is None and r["minibatch"] == 8 for r in rows)
    resumed = report["kill_and_resume"]
    assert resumed["ok"] and resumed["killed_at_sec"] > 0 and resumed["error"] is None
    assert resumed["final_kimg"] >= resumed["schedule"]["total_kimg"] and resumed["final_resolution"] == 16
    assert report["data_parallel"] == {"ok": None, "skipped": "needs 2 or more CUDA GPUs, 0 visible"}
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["res", "mb", "fp32", "fp32", "channels_last", "amp", "amp", "channels_last"]
    assert [line.split()[:2] for line in lines[1:4]] == [["4", "8"], ["8", "8"], ["16", "8"]]
    assert lines[-1] == f"wrote {out} ({report['seconds']} s)"
