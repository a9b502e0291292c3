"""Options to config: presets, overrides, minibatch tables, resume rules and every user error."""

from __future__ import annotations

import json

import h5py
import pytest
import torch

from pgtools.errors import PgtoolsError
from pgtools.models.config import (
    TrainConfig,
    check_minibatch,
    default_cache_gb,
    parse_minibatch,
    resolve_config,
    resume_config,
)
from pgtools.models.schedule import TF_1GPU_MINIBATCH


def test_defaults_follow_the_paper(tiny_dataset):
    config = resolve_config(str(tiny_dataset))
    assert (config.resolution, config.channels, config.num_classes) == (16, 3, 0)
    assert (config.lr, config.betas, config.eps, config.gp_lambda, config.drift, config.ema_beta) == (
        0.001, (0.0, 0.99), 1e-8, 10.0, 0.001, 0.999)
    assert (config.stabilize_kimg, config.transition_kimg, config.total_kimg) == (600, 600, 12000)
    assert config.minibatch == {4: 128, 8: 128, 16: 128}
    assert (config.latent_dim, config.fmap_base, config.fmap_max, config.mbstd_group_size) == (512, 8192, 512, 4)
    assert not config.mirror and config.metrics == [] and config.device == "auto"
    assert (config.ema_kimg, config.ema_rampup, config.tf32, config.amp, config.channels_last) == (
        None, None, False, False, True)
    assert config.cache_gb == default_cache_gb() > 0
    assert config.run_name == "tiny-16"


def test_presets_and_overrides(tmp_path, pyramid_maker):
    big = pyramid_maker(tmp_path / "faces.h5", count=2, resolution=1024)
    config = resolve_config(str(big), preset="celebahq-1024")
    assert (config.resolution, config.mirror, config.total_kimg) == (1024, True, 12000)
    assert config.minibatch == TF_1GPU_MINIBATCH and config.lr_per_resolution == {1024: 0.0015}
    assert config.run_name == "celebahq-1024"
    small = resolve_config(str(big), preset="celeba-128", resolution=64, mirror=False, minibatch="4:64,64:16",
                           total_kimg=300, lr=0.002, cache_gb=0)
    assert (small.resolution, small.mirror, small.total_kimg, small.lr, small.cache_gb) == (64, False, 300, 0.002, 0)
    assert small.minibatch == {4: 64, 8: 128, 16: 128, 32: 64, 64: 16}
    cifar = resolve_config(str(pyramid_maker(tmp_path / "c.h5", count=2, resolution=32)), preset="cifar10-32")
    assert (cifar.resolution, cifar.mirror) == (32, False)
    quick = resolve_config(str(tmp_path / "c.h5"), preset="quick-32")
    assert (quick.fmap_base, quick.fmap_max, quick.latent_dim, quick.lr, quick.ema_kimg, quick.ema_rampup) == (
        512, 64, 128, 0.003, 0.5, 0.05)
    assert quick.minibatch == {4: 8, 8: 8, 16: 8, 32: 8} and quick.run_name == "quick-32"
    assert resolve_config(str(tmp_path / "c.h5"), preset="quick-32", minibatch="16").minibatch[32] == 16
    with pytest.raises(PgtoolsError, match=r"c.h5: resolution 256 is not in the file \(it holds levels up to 32x32; "
                                           r"choose one of 4, 8, 16, 32\)"):
        resolve_config(str(tmp_path / "c.h5"), preset="lsun-256")


def test_minibatch_parsing():
    assert parse_minibatch("32", [4, 8], {4: 1, 8: 1}) == {4: 32, 8: 32}
    assert parse_minibatch(" 8:16 , ", [4, 8], {4: 1, 8: 1}) == {4: 1, 8: 16}
    for text, message in (("8:x", "expected a positive integer, got 'x'"), ("0", "got '0'"),
                          ("32:4", "32 is not a working resolution of this run \\(4, 8\\)"),
                          ("a", "expected one number or pairs like '4:64,8:32'")):
        with pytest.raises(PgtoolsError, match=message):
            parse_minibatch(text, [4, 8], {4: 1, 8: 1})


def test_minibatch_must_split_over_ranks_and_mbstd_groups():
    check_minibatch({4: 8, 8: 6}, world_size=2, group_size=4)  # 3 per rank: one group of 3
    with pytest.raises(PgtoolsError, match="the minibatch of 6 at 8x8 does not split evenly over 4 processes"):
        check_minibatch({8: 6}, world_size=4, group_size=4)
    with pytest.raises(PgtoolsError, match="minibatch of 6 per process at 8x8 is not a multiple of the "
                                           "minibatch-stddev group size 4"):
        check_minibatch({8: 6}, world_size=1, group_size=4)


def test_user_errors_are_one_clear_line(tmp_path, tiny_dataset):
    (tmp_path / "notes.h5").write_text("not hdf5")
    cases = [
        (None, {}, "a dataset is required: pgtools train DATASET.h5"),
        (tmp_path / "missing.h5", {}, "missing.h5: no such file"),
        (tmp_path / "notes.h5", {}, "notes.h5: not an HDF5 file"),
        (tiny_dataset, {"resolution": 64}, "resolution 64 is not in the file"),
        (tiny_dataset, {"resolution": 2}, "--resolution 2: training needs 4x4 or more \\(choose one of 4, 8, 16\\)"),
        (tiny_dataset, {"preset": "ffhq"}, "unknown preset 'ffhq'"),
        (tiny_dataset, {"total_kimg": -1}, "--total_kimg must be a positive number, got -1"),
        (tiny_dataset, {"cache_gb": -2.0}, "--cache_gb must be >= 0"),
        (tiny_dataset, {"conditional": True}, "--conditional needs labels, but the file has none"),
        (tiny_dataset, {"metrics": "swd,fid"}, "--metrics: unknown metric fid"),
        (tiny_dataset, {"metrics": "ms-ssim", "metrics_images": 9}, "--metrics_images must be even"),
        (tiny_dataset, {"minibatch": "6"}, "not a multiple of the minibatch-stddev group size 4"),
        (tiny_dataset, {"stabilize_kimg": float("inf")}, "--stabilize_kimg must be a positive number"),
        (tiny_dataset, {"device": "tpu"}, "--device 'tpu': choose auto, cpu or cuda"),
        (tiny_dataset, {"ema_kimg": 0}, "--ema_kimg must be a positive number, got 0"),
        (tiny_dataset, {"ema_rampup": 0.05}, "--ema_rampup needs --ema_kimg"),
    ]
    for dataset, options, message in cases:
        with pytest.raises(PgtoolsError, match=message):
            resolve_config(None if dataset is None else str(dataset), **options)
    incomplete = tmp_path / "incomplete.h5"
    incomplete.write_bytes(tiny_dataset.read_bytes())
    with h5py.File(incomplete, "a") as file:
        file.attrs["complete"] = False
    with pytest.raises(PgtoolsError, match=r"incomplete.h5: incomplete: 64 written \(its creation was interrupted\)"):
        resolve_config(str(incomplete))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_refused(tiny_dataset):
    with pytest.raises(PgtoolsError, match="--device cuda: CUDA is not available .*; use --device cpu or auto"):
        resolve_config(str(tiny_dataset), device="cuda")


def test_json_round_trip_and_resume_rules(tiny_dataset):
    config = resolve_config(str(tiny_dataset), minibatch="8", lr_per_resolution={16: 0.002}, metrics="swd")
    saved = json.loads(json.dumps(config.to_json()))
    assert TrainConfig.from_json(saved) == config
    resumed = resume_config(saved, total_kimg=20000, metrics="ms-ssim", device="cpu", lr=None)
    assert (resumed.total_kimg, resumed.metrics, resumed.device) == (20000, ["ms-ssim"], "cpu")
    assert resumed.minibatch == config.minibatch and resumed.lr_per_resolution == {16: 0.002}
    with pytest.raises(PgtoolsError, match="these cannot change: --lr, --mirror \\(allowed: --total_kimg"):
        resume_config(saved, lr=0.01, mirror=True)
