"""SIGINT and SIGTERM during training: a checkpoint at the next step, one line, exit 128 + signal, and an
exact resume (issue 12 items 3, 10 and 16)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from pgtools.models.checkpoint import load_checkpoint
from pgtools.models.loop import train
from tests.models.test_distributed import free_port

pytestmark = pytest.mark.usefixtures("one_thread")
ENDLESS = dict(total_kimg=100, snapshot_kimg=100, image_snapshot_kimg=100)  # no checkpoint before the signal


def wait_for_first_tick(processes: list[subprocess.Popen], outdir: Path) -> Path:
    """The run directory, once its first status line is written."""
    deadline = time.monotonic() + 120
    while not list(outdir.glob("*/stats.jsonl")):
        for process in processes:
            assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return next(outdir.iterdir())


@pytest.mark.parametrize("number, streamed", [(signal.SIGINT, True), (signal.SIGTERM, False)])
def test_signal_saves_a_checkpoint_and_resume_ends_bit_identical(tiny_dataset, tiny_config, pgtools_process,
                                                                  tmp_path, number, streamed):
    # Streamed levels read by a worker process; Ctrl-C reaches the whole process group, workers included.
    reading = dict(cache_gb=0, data_workers=1) if streamed else {}
    argv, env = pgtools_process(tiny_dataset, mirror=True, outdir=tmp_path / "stopped", **ENDLESS, **reading)
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    run = wait_for_first_tick([process], tmp_path / "stopped")
    if streamed:
        os.killpg(process.pid, number)
    else:
        process.send_signal(number)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + number, stderr
    state = load_checkpoint(run)
    nimg = state["position"]["nimg"]
    snapshot = run / f"network-snapshot-{nimg:09d}.pt"
    assert stdout == "" and stderr == (f"Interrupted by {number.name} at kimg {nimg / 1000:.3f}: saved {snapshot}; "
                                       f"continue with pgtools train --resume {run}\n")
    assert nimg >= 16 and (run / "latest.pt").stat().st_ino == snapshot.stat().st_ino
    # Continue with the other way of reading levels (--cache_gb is an override --resume accepts).
    total_kimg = (nimg + 48) / 1000
    other = dict(cache_gb=1.0, data_workers=0) if streamed else dict(cache_gb=0, data_workers=0)
    resumed = load_checkpoint(train(tiny_config(mirror=True, total_kimg=total_kimg, **other), resume=run))
    reference = load_checkpoint(train(tiny_config(mirror=True, total_kimg=total_kimg, outdir=str(tmp_path / "ref"))))
    assert resumed["position"] == reference["position"]
    for net in ("G", "D", "G_ema"):
        for name, value in reference[net].items():
            assert torch.equal(resumed[net][name], value), f"{net}.{name}"
    assert snapshot.is_file()  # the resumed run did not replace the checkpoint it started from


def test_sigterm_to_every_torchrun_rank_stops_both_at_one_step(tiny_dataset, pgtools_process, tmp_path,
                                                               no_torchrun_env):
    torchrun = dict(WORLD_SIZE="2", LOCAL_WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    ranks = []
    for rank in (0, 1):
        argv, env = pgtools_process(tiny_dataset, env=dict(torchrun, RANK=str(rank), LOCAL_RANK=str(rank)),
                                    outdir=tmp_path / "two", **ENDLESS)
        ranks.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    run = wait_for_first_tick(ranks, tmp_path / "two")
    ranks[1].send_signal(signal.SIGTERM)  # rank 1 first: rank 0 stops at the same step all the same
    time.sleep(0.05)
    ranks[0].send_signal(signal.SIGTERM)
    outputs = [rank.communicate(timeout=120) for rank in ranks]
    assert [rank.returncode for rank in ranks] == [143, 143], outputs
    nimg = load_checkpoint(run)["position"]["nimg"]
    assert outputs[0][1].startswith(f"Interrupted by SIGTERM at kimg {nimg / 1000:.3f}: saved ")
    assert outputs[1] == ("", "")  # only rank 0 reports
    assert "stopped: Interrupted: interrupted by SIGTERM" in (run / "log.txt").read_text()
