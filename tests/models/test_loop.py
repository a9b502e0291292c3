"""The training loop on a tiny pyramid: files written, exact resume, Adam resets, NaN stop, sharding."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from pgtools.errors import PgtoolsError
from pgtools.models.checkpoint import load_checkpoint
from pgtools.models.data import RealImageFeed
from pgtools.models.distributed import World
from pgtools.models.loop import data_workers, train
from pgtools.models.step import draw_inputs

pytestmark = pytest.mark.usefixtures("one_thread")


def assert_same_training_state(a: dict, b: dict) -> None:
    """Every parameter, optimizer tensor and the position are exactly equal."""
    for net in ("G", "D", "G_ema"):
        assert a[net].keys() == b[net].keys()
        for name in a[net]:
            assert torch.equal(a[net][name], b[net][name]), f"{net}.{name} differs"
    for name in ("G", "D"):
        state_a, state_b = a["trainer"]["optimizers"][name]["state"], b["trainer"]["optimizers"][name]["state"]
        assert state_a.keys() == state_b.keys()
        for index in state_a:
            for key in state_a[index]:
                assert torch.equal(state_a[index][key], state_b[index][key]), f"{name} Adam {index}.{key}"
    assert a["position"] == b["position"]
    assert a["trainer"]["lod_key"] == b["trainer"]["lod_key"]


def test_smoke_run_grows_to_16x16_and_writes_every_file(tiny_config):
    config = tiny_config(metrics="swd,ms-ssim", metrics_kimg=0.08, metrics_images=64)
    lines = []
    run = train(config, report=lines.append)
    assert run.name == "00000-tiny-16"
    assert json.loads((run / "config.json").read_text()) == json.loads(json.dumps(config.to_json()))
    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    ticks = [r for r in records if "tick" in r]
    assert [r["tick"] for r in ticks] == list(range(1, 11))
    assert [r["kimg"] for r in ticks] == pytest.approx([0.016 * i for i in range(1, 11)])
    assert [(r["resolution"], r["phase"]) for r in ticks[::2]] == [
        (4, "stabilize"), (8, "fade-in"), (8, "stabilize"), (16, "fade-in"), (16, "stabilize")]
    for record in ticks:
        for key in ("D/loss", "G/loss", "D/gradient_penalty", "images_per_sec", "sec_per_kimg", "rss_mib", "lod",
                    "alpha"):
            assert math.isfinite(record[key]), key
        assert record["cuda_max_allocated_mib"] is None
    metrics = [r for r in records if "metrics" in r]
    assert [r["kimg"] for r in metrics] == [0.08, 0.16]
    assert set(metrics[0]["metrics"]) == {"swd", "ms-ssim"} and metrics[1]["resolution"] == 16
    assert Image.open(run / "reals.png").size == (16 * 16, 9 * 16)  # 16x9 grid of 16x16 images
    assert sorted(p.name for p in run.glob("fakes*")) == ["fakes000000000.png", "fakes000000080.png",
                                                         "fakes000000160.png"]
    assert Image.open(run / "fakes000000160.png").size == (16 * 16, 9 * 16)
    curves = np.asarray(Image.open(run / "training_curves.png"))
    assert curves.shape == (420 + 2 * 260, 900, 3)  # the losses, then a panel per metric
    swd_green, ms_ssim_purple = (30, 140, 60), (150, 60, 170)
    assert not (curves[:420] == swd_green).all(axis=-1).any()
    assert (curves[420:680] == swd_green).all(axis=-1).sum() > 20  # the SWD line and its points
    assert (curves[680:] == ms_ssim_purple).all(axis=-1).sum() > 20
    assert sorted(p.name for p in run.glob("*.pt")) == ["latest.pt", "network-snapshot-000000080.pt",
                                                        "network-snapshot-000000160.pt"]
    snapshot = run / "network-snapshot-000000160.pt"
    assert (run / "latest.pt").stat().st_ino == snapshot.stat().st_ino
    state = load_checkpoint(run)
    assert state["position"] == {"step": 20, "nimg": 160, "kimg": 0.16, "resolution": 16, "alpha": 1.0,
                                 "lod": 0.0, "phase_index": 2}
    assert len(state["progress"]["history"]) == 10 and len(state["progress"]["metrics"]) == 2
    status = [line for line in lines if line.startswith("tick")]
    assert len(status) == 10 and "16x16 stabilize" in status[-1] and "img/s" in status[-1]
    log = (run / "log.txt").read_text()
    assert all(line in log for line in lines)
    assert "metrics at kimg 0.16: SWD x1e3 (16 / average): " in log


@pytest.mark.parametrize("ema", [{}, {"ema_kimg": 0.02, "ema_rampup": 0.5}], ids=["ema-beta", "ema-half-life"])
def test_resume_after_interruption_mid_fade_in_is_bit_identical(tiny_config, tmp_path, ema):
    uninterrupted = train(tiny_config(mirror=True, outdir=str(tmp_path / "a"), **ema))

    class Stop(Exception):
        pass

    def stop_after_kimg_0_064(line):  # a crash one tick after the checkpoint at kimg 0.048
        if line.startswith("tick") and "kimg 0.064" in line:
            raise Stop

    interrupted_config = tiny_config(mirror=True, outdir=str(tmp_path / "b"), snapshot_kimg=0.024, **ema)
    with pytest.raises(Stop):
        train(interrupted_config, report=stop_after_kimg_0_064)
    run = next((tmp_path / "b").iterdir())
    assert load_checkpoint(run)["position"]["nimg"] == 48  # fading in 8x8: alpha 0.5
    assert load_checkpoint(run)["position"]["alpha"] == 0.5
    assert [json.loads(line)["kimg"] for line in (run / "stats.jsonl").read_text().splitlines()][-1] == 0.064
    lines = []
    assert train(interrupted_config, resume=run, report=lines.append) == run
    assert lines[0].startswith(f"resumed from {run / 'latest.pt'} at kimg 0.048 (step 6, 8x8, alpha 0.500)")
    assert_same_training_state(load_checkpoint(uninterrupted), load_checkpoint(run))
    kimgs = [json.loads(line)["kimg"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert kimgs == pytest.approx([0.016 * i for i in range(1, 11)])  # the lost tick was dropped, then redone


def test_adam_state_restarts_at_every_level_of_detail_change(tiny_config):
    # Steps start at nimg 0, 8, ..., 40; the one at 40 is the first of the 4 -> 8 fade-in.
    state = load_checkpoint(train(tiny_config(total_kimg=0.048)))
    assert state["trainer"]["lod_key"] == [1, 2]
    for name in ("G", "D"):
        steps = {float(s["step"]) for s in state["trainer"]["optimizers"][name]["state"].values()}
        assert steps == {1.0}
    # Parameters a phase never used have no Adam state: at 8x8 fading in, nothing of 16x16.
    g_state = state["trainer"]["optimizers"]["G"]["state"]
    names = list(state["G"])
    assert not any(names[i].startswith(("blocks.16.", "to_rgb.16")) for i in g_state)
    assert any(names[i].startswith("blocks.8.") for i in g_state)


def test_diverging_run_stops_and_keeps_the_last_good_checkpoint(tiny_config, tmp_path):
    # A learning rate of 1e30 from the 8x8 fade-in on (kimg 0.032) blows the networks up.
    config = tiny_config(lr_per_resolution={8: 1e30}, snapshot_kimg=0.032, max_bad_steps=3)
    with pytest.raises(PgtoolsError, match=r"training stopped at kimg 0\.0\d+: the (losses|network weights) .*"
                                           r"the last good checkpoint is .*network-snapshot-000000032\.pt"):
        train(config)
    run = next((tmp_path / "runs").iterdir())
    state = load_checkpoint(run)
    assert state["position"]["nimg"] == 32
    assert all(torch.isfinite(value).all() for net in ("G", "D", "G_ema") for value in state[net].values())
    assert sorted(p.name for p in run.glob("*.pt")) == ["latest.pt", "network-snapshot-000000032.pt"]
    assert "stopped: PgtoolsError: training stopped at kimg" in (run / "log.txt").read_text()


def test_draws_do_not_depend_on_the_number_of_ranks(tiny_dataset, tiny_config):
    config = tiny_config(mirror=True)
    phase = config.schedule().at(0.04)  # fading in 8x8
    whole = {}
    with RealImageFeed(tiny_dataset, cache_bytes=2**20, mirror=True, seed=0) as feed:
        whole = draw_inputs(feed, phase, 5, config=config, world=World())
    for rank in (0, 1):
        with RealImageFeed(tiny_dataset, cache_bytes=2**20, mirror=True, seed=0, rank=rank, world_size=2) as feed:
            part = draw_inputs(feed, phase, 5, config=config, world=World(rank=rank, world_size=2))
        for name in ("reals", "d_latents", "penalty_weights", "g_latents"):
            assert torch.equal(getattr(part, name), getattr(whole, name)[rank::2]), name
    assert whole.reals.shape == (8, 3, 8, 8) and not np.isclose(whole.penalty_weights.std().item(), 0)


@pytest.mark.parametrize("mode", ["bfloat16", "float16", "channels_last"])
def test_mixed_precision_and_channels_last_train_on_cpu(tiny_config, monkeypatch, mode):
    if mode == "float16":  # what --amp picks on GPUs without bfloat16: float16 with loss scaling for G
        monkeypatch.setattr("pgtools.models.step.amp_dtype", lambda device, enabled: torch.float16)
    run = train(tiny_config(total_kimg=0.048, amp=mode != "channels_last", channels_last=mode == "channels_last"))
    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["D/loss"]) and math.isfinite(r["G/loss"]) for r in records)
    scalers = load_checkpoint(run)["trainer"]["scalers"]
    assert (scalers["G"] != {}) == (mode == "float16") and scalers["D"] == {}


def test_step_with_non_finite_gradients_is_skipped(tiny_config):
    from pgtools.models.loop import build_networks
    from pgtools.models.step import Trainer

    config = tiny_config()
    G, D, G_ema = build_networks(config, torch.device("cpu"))
    trainer = Trainer(G, D, G_ema, config=config, world=World())
    phase = config.schedule().at(0)
    with RealImageFeed(config.dataset, cache_bytes=2**20) as feed:
        inputs = draw_inputs(feed, phase, 0, config=config, world=World())
        before = {name: p.detach().clone() for name, p in D.named_parameters()}
        hook = D.blocks["4"].dense1.bias.register_hook(lambda grad: grad * float("nan"))
        stats = trainer.step(phase, inputs, nimg=0)
        hook.remove()
        assert math.isfinite(stats["D/loss"]) and trainer.skipped_steps == 1 and trainer.bad_steps == 0
        assert all(torch.equal(p, before[name]) for name, p in D.named_parameters())  # D untouched
        trainer.step(phase, draw_inputs(feed, phase, 1, config=config, world=World()), nimg=8)
        assert trainer.skipped_steps == 1
        assert not torch.equal(D.blocks["4"].dense1.weight, before["blocks.4.dense1.weight"])


def test_a_failed_start_leaves_no_run_directory(tiny_config, tiny_dataset, tmp_path):
    # Issue 12 item 4: the dataset goes bad between resolving the config and training.
    dataset = tmp_path / "going.h5"
    dataset.write_bytes(tiny_dataset.read_bytes())
    config = tiny_config(dataset=dataset)
    dataset.write_bytes(b"not a pyramid any more")
    with pytest.raises(PgtoolsError, match="going.h5"):
        train(config)
    assert list((tmp_path / "runs").glob("*")) == []


def test_data_workers_are_capped_at_usable_cpus(monkeypatch):
    monkeypatch.setattr("pgtools.models.loop.usable_cpus", lambda: 2)
    assert data_workers(8, 1) == (2, "--data_workers 8: only 2 usable CPUs per process; using 2")
    assert data_workers(3, 4) == (1, "--data_workers 3: only 1 usable CPU per process; using 1")
    assert data_workers(2, 1) == (2, None) and data_workers(0, 2) == (0, None)


def test_unused_labels_and_capped_workers_are_reported(labelled_dataset, tiny_config, monkeypatch):
    monkeypatch.setattr("pgtools.models.loop.usable_cpus", lambda: 1)
    lines = []
    run = train(tiny_config(dataset=labelled_dataset, total_kimg=0.016, data_workers=4), report=lines.append)
    notes = ["--data_workers 4: only 1 usable CPU per process; using 1",
             "the dataset has labels (3 classes) that this run ignores; --conditional trains on them"]
    assert lines[1:3] == notes and all(note in (run / "log.txt").read_text() for note in notes)
    lines = []
    train(tiny_config(dataset=labelled_dataset, total_kimg=0.016, conditional=True), report=lines.append)
    assert not any("ignores" in line for line in lines)
