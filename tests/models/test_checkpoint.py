"""Checkpoint files: round trip, RNG states, latest.pt, pruning, and clear errors for bad files."""

from __future__ import annotations

import pickle
import random
import signal
import subprocess
import time
import warnings

import numpy as np
import pytest
import torch

from pgtools.errors import PgtoolsError
from pgtools.models import checkpoint as ckpt
from pgtools.models.loop import build_networks, network_kwargs, train
from pgtools.models.networks import Generator

pytestmark = pytest.mark.usefixtures("one_thread")


def test_round_trip_keeps_every_tensor_and_loads_with_weights_only(tiny_config, tmp_path):
    config = tiny_config()
    G, D, G_ema = build_networks(config, torch.device("cpu"))
    optimizer = torch.optim.Adam(G.parameters(), betas=(0.0, 0.99))
    G(torch.randn(4, 16), resolution=8, alpha=0.5).square().mean().backward()
    optimizer.step()
    state = {"config": config.to_json(), "networks": network_kwargs(config), "G": G.state_dict(),
             "D": D.state_dict(), "G_ema": G_ema.state_dict(), "trainer": {"G": optimizer.state_dict()},
             "position": {"step": 3, "nimg": 24, "alpha": 0.25}, "rng": ckpt.rng_state(), "progress": {}}
    path = ckpt.save_checkpoint(state, tmp_path / ckpt.snapshot_name(24))
    assert path.name == "network-snapshot-000000024.pt"
    assert ckpt.snapshot_name(120_999) == "network-snapshot-000120999.pt"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind
    loaded = ckpt.load_checkpoint(path)
    assert loaded["format"] == "pgtools-pggan" and loaded["version"] == 1
    assert loaded["position"] == state["position"] and loaded["config"] == state["config"]
    rebuilt = Generator(**loaded["networks"]["G"])
    rebuilt.load_state_dict(loaded["G"])
    for name, value in G.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[name], value)
    exp_avg_sq = loaded["trainer"]["G"]["state"][0]["exp_avg_sq"]
    assert torch.equal(exp_avg_sq, optimizer.state_dict()["state"][0]["exp_avg_sq"])


def test_rng_state_restores_torch_numpy_and_python_draws():
    saved = ckpt.rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.rand(5), np.random.rand(5), random.random()
    ckpt.set_rng_state(saved)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(again[0], expected[0]) and np.array_equal(again[1], expected[1]) and again[2] == expected[2]


def test_latest_link_pruning_and_lookup(tmp_path):
    # Snapshots of earlier versions were named by whole kimg (six digits): listed, found and pruned too.
    for nimg in (10_000, 2_512, 30_000, 2_000):
        ckpt.save_checkpoint({"position": {"nimg": nimg}}, tmp_path / ckpt.snapshot_name(nimg))
    ckpt.save_checkpoint({"position": {"nimg": 4_000}}, tmp_path / "network-snapshot-000004.pt")
    (tmp_path / "network-snapshot-0001.pt").write_text("not a snapshot name")
    assert [p.name for p in ckpt.snapshots(tmp_path)] == [
        "network-snapshot-000002000.pt", "network-snapshot-000002512.pt", "network-snapshot-000004.pt",
        "network-snapshot-000010000.pt", "network-snapshot-000030000.pt"]
    assert ckpt.find_checkpoint(tmp_path).name == "network-snapshot-000030000.pt"  # no latest.pt yet
    latest = ckpt.link_latest(tmp_path / "network-snapshot-000010000.pt")
    assert ckpt.find_checkpoint(tmp_path) == latest
    assert ckpt.load_checkpoint(tmp_path)["position"] == {"nimg": 10_000}
    assert [p.name for p in ckpt.prune_snapshots(tmp_path, keep=1)] == [
        "network-snapshot-000002000.pt", "network-snapshot-000002512.pt", "network-snapshot-000004.pt",
        "network-snapshot-000010000.pt"]
    assert ckpt.load_checkpoint(tmp_path)["position"] == {"nimg": 10_000}  # the link outlives its name
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "latest.pt", "network-snapshot-000030000.pt", "network-snapshot-0001.pt"]
    (tmp_path / "latest.pt").unlink()
    ckpt.save_checkpoint({"position": {"nimg": 40_000}}, tmp_path / "network-snapshot-000040.pt")
    assert ckpt.load_checkpoint(tmp_path)["position"] == {"nimg": 40_000}  # an old run still resumes


def test_bad_checkpoints_give_one_clear_line(tmp_path):
    with pytest.raises(PgtoolsError, match="no checkpoint in this folder"):
        ckpt.load_checkpoint(tmp_path)
    with pytest.raises(PgtoolsError, match="no such checkpoint file or run directory"):
        ckpt.load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(PgtoolsError, match=r"text.pt: not a checkpoint written by pgtools train \(torch.load failed"):
        ckpt.load_checkpoint(tmp_path / "text.pt")
    pickle.dump({"object": object}, (tmp_path / "pickle.pt").open("wb"), protocol=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(PgtoolsError) as error:  # torch warns, then fails over many lines: one line
            ckpt.load_checkpoint(tmp_path / "pickle.pt")
    assert str(error.value) == (f"{tmp_path / 'pickle.pt'}: not a checkpoint written by pgtools train "
                                "(torch.load failed: UnpicklingError: Weights only load failed)")
    assert caught == []
    torch.save({"netG": {}}, tmp_path / "other.pt")
    with pytest.raises(PgtoolsError, match="other.pt: not a checkpoint written by pgtools train$"):
        ckpt.load_checkpoint(tmp_path / "other.pt")
    torch.save({"format": "pgtools-pggan", "version": 99}, tmp_path / "future.pt")
    with pytest.raises(PgtoolsError, match="checkpoint version 99 is not supported"):
        ckpt.load_checkpoint(tmp_path / "future.pt")


def test_run_killed_with_sigkill_resumes_from_its_last_checkpoint(tiny_dataset, tiny_config, pgtools_process,
                                                                  tmp_path):
    argv, env = pgtools_process(tiny_dataset, total_kimg=100, snapshot_kimg=0.016, image_snapshot_kimg=100,
                                outdir=tmp_path / "killed")
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "killed").glob("*/latest.pt")) and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.02)
    time.sleep(0.3)  # let it train on and write more checkpoints, then kill it wherever it is
    process.send_signal(signal.SIGKILL)
    process.wait()
    run = next((tmp_path / "killed").iterdir())
    nimg = ckpt.load_checkpoint(run)["position"]["nimg"]
    total_kimg = (nimg + 48) / 1000
    config = tiny_config(total_kimg=total_kimg, snapshot_kimg=0.016, image_snapshot_kimg=100)
    resumed = ckpt.load_checkpoint(train(config, resume=run))
    reference = ckpt.load_checkpoint(train(tiny_config(total_kimg=total_kimg, outdir=str(tmp_path / "ref"))))
    assert resumed["position"]["nimg"] == nimg + 48 == reference["position"]["nimg"]
    for net in ("G", "D", "G_ema"):
        for name, value in reference[net].items():
            assert torch.equal(resumed[net][name], value), f"{net}.{name}"
    assert f"resumed from {run / 'latest.pt'} at kimg {nimg / 1000:.3f}" in (run / "log.txt").read_text()
    assert not list(run.glob(".*"))  # temporaries of a checkpoint being written when killed are removed
