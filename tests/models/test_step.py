"""One training step's numerics: the EMA's β, the AMP dtype policy, TF32 off unless asked."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pgtools.models.api import load
from pgtools.models.data import RealImageFeed
from pgtools.models.distributed import World
from pgtools.models.loop import build_networks, train
from pgtools.models.precision import amp_dtype
from pgtools.models.step import Trainer, draw_inputs, ema_beta

pytestmark = pytest.mark.usefixtures("one_thread")


def test_ema_beta_is_the_papers_constant_or_a_half_life_with_ramp_up(tiny_config):
    paper = tiny_config()
    assert (paper.ema_kimg, paper.ema_rampup) == (None, None)
    assert ema_beta(paper, 16, 0) == ema_beta(paper, 128, 10**6) == 0.999
    half_life = dataclasses.replace(paper, ema_kimg=0.5)
    assert ema_beta(half_life, 16, 0) == 0.5 ** (16 / 500) == ema_beta(half_life, 16, 10**6)
    assert ema_beta(half_life, 16, 0) ** (500 / 16) == pytest.approx(0.5, rel=1e-12)  # halves in 0.5 kimg
    ramped = dataclasses.replace(half_life, ema_rampup=0.05)
    assert ema_beta(ramped, 16, 0) == 0.0  # the first step copies G
    assert ema_beta(ramped, 16, 1000) == 0.5 ** (16 / 50)  # half-life 5% of the 1 kimg so far
    assert ema_beta(ramped, 16, 10000) == 0.5 ** (16 / 500) == ema_beta(ramped, 16, 20000)  # capped at 0.5 kimg


def test_amp_runs_only_the_g_step_in_bfloat16(tiny_config):
    assert amp_dtype(torch.device("cpu"), False) is None
    assert amp_dtype(torch.device("cpu"), True) == torch.bfloat16
    config = tiny_config(amp=True)
    G, D, G_ema = build_networks(config, torch.device("cpu"))
    trainer = Trainer(G, D, G_ema, config=config, world=World())
    seen = []
    D.register_forward_hook(lambda module, args, out: seen.append(("D", out.dtype)))
    G.register_forward_hook(lambda module, args, out: seen.append(("G", out.dtype)))
    phase = config.schedule().at(0)
    with RealImageFeed(config.dataset, cache_bytes=2**20) as feed:
        trainer.step(phase, draw_inputs(feed, phase, 0, config=config, world=World()), nimg=0)
    # D step: the fakes, then D on reals, fakes and the penalty's mixes, all float32;
    # G step: fakes and their scores under bfloat16 autocast.
    assert seen == [("G", torch.float32)] + [("D", torch.float32)] * 3 + [("G", torch.bfloat16), ("D", torch.bfloat16)]
    assert all(p.dtype == torch.float32 for net in (G, D, G_ema) for p in net.parameters())


@pytest.fixture
def tf32_flags():
    """Restores PyTorch's TF32 flags after the test."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def flags() -> tuple[bool, bool]:
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


@pytest.mark.usefixtures("tf32_flags")
def test_tf32_is_off_for_training_and_sampling_unless_asked(tiny_config, tmp_path):
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    run = train(tiny_config(total_kimg=0.016, outdir=str(tmp_path / "a")))
    assert flags() == (False, False)
    train(tiny_config(total_kimg=0.016, outdir=str(tmp_path / "b"), tf32=True))
    assert flags() == (True, True)
    load(run, device="cpu")
    assert flags() == (False, False)
