"""pgtools metrics: reals from a pyramid against a pyramid or a checkpoint."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
from click.testing import CliRunner

from pgtools.cli import main
from pgtools.models.metrics.sets import flips, sample_indices
from pgtools.models.metrics.swd import sliced_wasserstein
from pgtools.pyramid import Pyramid, write_pyramid


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_the_same_images_in_another_order_give_zero_swd(tiny_dataset, tmp_path):
    # Both sets are all 64 images, in different orders: SWD does not depend on order, by
    # construction (canonical order before any float arithmetic), so exactly 0 on any CPU.
    with Pyramid(tiny_dataset) as pyramid:
        images = pyramid.read_indices(16, np.arange(64)[::-1])
    reordered = tmp_path / "reordered.h5"
    write_pyramid(reordered, [images], resolution=16, channels=3, count=64)
    result = run("metrics", tiny_dataset, "--fakes", reordered, "--num_images", 64, "--metrics", "swd", "--json")
    assert result.exit_code == 0, result.output
    swd = json.loads(result.output)["swd"]
    assert swd["resolutions"] == [16] and swd["num_images"] == 64
    assert swd["levels"] == [0.0] and swd["average"] == 0.0


def test_reals_against_reals_draws_two_disjoint_sets(tiny_dataset):
    # The noise floor: REALS as --fakes gives a second sample that shares no image with the first.
    result = run("metrics", tiny_dataset, "--fakes", tiny_dataset, "--num_images", 32, "--metric", "swd", "--json")
    assert result.exit_code == 0, result.output
    with Pyramid(tiny_dataset) as pyramid:
        first, second = sample_indices(pyramid, 32, seed=0, sets=2)
        expected = sliced_wasserstein(pyramid.read_indices(16, first), pyramid.read_indices(16, second))
    assert json.loads(result.output)["swd"] == asdict(expected) and expected.average > 0
    result = run("metrics", tiny_dataset, "--fakes", tiny_dataset, "--num_images", 34, "--metrics", "swd")
    assert result.exit_code == 1 and result.output == (
        f"Error: {tiny_dataset} holds 64 images, too few for 2 disjoint sets of 34 (reals against reals); "
        "use --num_images 32 or fewer\n")


def test_mirror_flips_both_sets_at_random(tiny_dataset):
    result = run("metrics", tiny_dataset, "--fakes", tiny_dataset, "--num_images", 32, "--metrics", "swd",
                 "--mirror", "--seed", 3, "--json")
    assert result.exit_code == 0, result.output
    with Pyramid(tiny_dataset) as pyramid:
        first, second = sample_indices(pyramid, 32, seed=3, sets=2)
        sets = []
        for indices, seed in ((first, 3), (second, 4)):
            images, mask = pyramid.read_indices(16, indices), flips(32, seed)
            images[mask] = images[mask, ..., ::-1]
            sets.append(images)
    values = json.loads(result.output)
    assert values["mirror"] is True and values["swd"] == asdict(sliced_wasserstein(*sets, seed=3))


def test_paper_format_and_other_sets(tiny_dataset, pyramid_maker, tmp_path):
    other = pyramid_maker(tmp_path / "other.h5", seed=5)
    result = run("metrics", tiny_dataset, "--fakes", other, "--num_images", 32)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"32 images of {tiny_dataset} at 16x16 against 32 images of {other}"
    assert lines[1].startswith("SWD x1e3 (16 / average): ") and float(lines[1].split("/ ")[-1]) > 1
    assert lines[2].startswith("MS-SSIM: ") and "(reals " in lines[2] and "16 pairs)" in lines[2]


def test_fakes_from_a_checkpoint_mirror_the_reals_as_the_run_did(tiny_dataset, tmp_path):
    from pgtools.models.config import resolve_config
    from pgtools.models.loop import train

    tiny = dict(fmap_base=64, fmap_max=16, latent_dim=16, minibatch="8", stabilize_kimg=0.032, transition_kimg=0.032,
                total_kimg=0.136, tick_kimg=0.016, device="cpu", cache_gb=1.0, data_workers=0, outdir=str(tmp_path),
                mirror=True)
    run_dir = train(resolve_config(str(tiny_dataset), **tiny))  # through the 8 -> 16 fade-in
    result = run("metrics", tiny_dataset, "--fakes", run_dir, "--num_images", 16, "--json")
    assert result.exit_code == 0, result.output
    values = json.loads(result.output)
    assert values["resolution"] == 16 and 0 <= values["ms-ssim"]["fakes"] <= 1 and values["swd"]["average"] > 0
    assert values["mirror"] is True
    again = run("metrics", tiny_dataset, "--fakes", run_dir, "--num_images", 16, "--json")
    assert json.loads(again.output) == values  # seeded: the same fakes and reals
    plain = json.loads(run("metrics", tiny_dataset, "--fakes", run_dir, "--num_images", 16, "--json",
                           "--no-mirror").output)
    assert plain["mirror"] is False and plain["swd"] != values["swd"]
    assert plain["ms-ssim"]["fakes"] == values["ms-ssim"]["fakes"]  # the same fakes


def test_errors_are_one_line(tiny_dataset, pyramid_maker, tmp_path):
    result = run("metrics", tiny_dataset, "--fakes", tiny_dataset, "--num_images", 100)
    assert result.exit_code == 1
    assert result.output == f"Error: {tiny_dataset} holds 64 images, too few for 2 disjoint sets of 100 " \
                            "(reals against reals); use --num_images 32 or fewer\n"
    other = pyramid_maker(tmp_path / "other.h5", seed=5)
    result = run("metrics", tiny_dataset, "--fakes", other, "--num_images", 100)
    assert result.output == f"Error: {other} holds 64 images; use --num_images 64 or fewer\n"
    result = run("metrics", tiny_dataset, "--fakes", tiny_dataset, "--num_images", 16, "--metrics", "fid")
    assert result.exit_code == 1 and result.output == "Error: unknown metric 'fid'; available: ms-ssim, swd\n"
    result = run("metrics", tiny_dataset, "--fakes", other, "--num_images", 2)
    assert result.exit_code == 1 and result.output == (
        "Error: --num_images 2 is too few to measure anything but noise; use at least 16 (the paper: 8192 or "
        "16384)\n")
    gray = pyramid_maker(tmp_path / "gray.h5", channels=1)
    result = run("metrics", gray, "--fakes", other, "--num_images", 16)
    assert result.exit_code == 1 and result.output == (
        f"Error: {gray} holds grayscale (1 channel) images but the fakes are RGB (3 channels); compare sets "
        "with the same channels\n")
