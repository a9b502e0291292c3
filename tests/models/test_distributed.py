"""Data parallelism: two gloo processes on CPU train the same networks as one process."""

from __future__ import annotations

import socket
import subprocess

import pytest
import torch

from pgtools.errors import PgtoolsError
from pgtools.models.checkpoint import load_checkpoint
from pgtools.models.distributed import World, setup
from pgtools.models.loop import train


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.usefixtures("one_thread")
def test_two_gloo_processes_match_one_process(tiny_dataset, tiny_config, pgtools_process, tmp_path, no_torchrun_env):
    # 4x4, then the 8x8 fade-in: 8 steps of a global minibatch of 8 (4 per rank, one mbstd group each).
    single = load_checkpoint(train(tiny_config(outdir=str(tmp_path / "one"), mirror=True, total_kimg=0.064)))
    torchrun = dict(WORLD_SIZE="2", LOCAL_WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    ranks = []
    for rank in (0, 1):
        argv, env = pgtools_process(tiny_dataset, env=dict(torchrun, RANK=str(rank), LOCAL_RANK=str(rank)),
                                    mirror=True, total_kimg=0.064, outdir=tmp_path / "two")
        ranks.append(subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    outputs = [rank.communicate(timeout=180) for rank in ranks]
    assert [rank.returncode for rank in ranks] == [0, 0], outputs
    runs = list((tmp_path / "two").iterdir())
    assert len(runs) == 1  # rank 1 writes nothing
    double = load_checkpoint(runs[0])
    assert double["position"] == single["position"]
    for net in ("G", "D", "G_ema"):
        for name, value in single[net].items():
            torch.testing.assert_close(double[net][name], value, rtol=1e-5, atol=2e-6, msg=f"{net}.{name}")


def test_setup_without_torchrun_is_one_cpu_process(no_torchrun_env):
    world = setup("cpu")
    assert world == World(0, 1, 0, 1, torch.device("cpu")) and world.is_main
    x = torch.arange(10.0)
    world.mean_([x])
    assert torch.equal(x, torch.arange(10.0)) and world.mean({"a": 2.0}) == {"a": 2.0}
    assert torch.equal(World(rank=1, world_size=3).shard(torch.arange(9)), torch.tensor([1, 4, 7]))


def test_setup_rejects_incomplete_torchrun_environments(no_torchrun_env):
    no_torchrun_env.setenv("WORLD_SIZE", "2")
    no_torchrun_env.setenv("RANK", "0")
    with pytest.raises(PgtoolsError, match="WORLD_SIZE is 2 but MASTER_ADDR is not set; launch with torchrun"):
        setup("cpu")
    no_torchrun_env.setenv("RANK", "2")
    with pytest.raises(PgtoolsError, match=r"RANK 2 is outside 0..WORLD_SIZE-1 \(WORLD_SIZE 2\)"):
        setup("cpu")
    no_torchrun_env.setenv("RANK", "one")
    with pytest.raises(PgtoolsError, match="environment variable RANK='one' is not an integer"):
        setup("cpu")
