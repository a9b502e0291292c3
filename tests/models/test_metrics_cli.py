"""pgtools metrics: reals from a pyramid against a pyramid or a checkpoint."""

from __future__ import annotations

import json

from click.testing import CliRunner

from pgtools.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_the_same_images_in_another_order_give_zero_swd(tiny_dataset):
    # Both sets are all 64 images, sampled in different orders: SWD does not depend on order, by
    # construction (canonical order before any float arithmetic), so exactly 0 on any CPU.
    result = run("metrics", tiny_dataset, "--fakes", tiny_dataset, "--num_images", 64, "--metric", "swd", "--json")
    assert result.exit_code == 0, result.output
    swd = json.loads(result.output)["swd"]
    assert swd["resolutions"] == [16] and swd["num_images"] == 64
    assert swd["levels"] == [0.0] and swd["average"] == 0.0


def test_paper_format_and_other_sets(tiny_dataset, pyramid_maker, tmp_path):
    other = pyramid_maker(tmp_path / "other.h5", seed=5)
    result = run("metrics", tiny_dataset, "--fakes", other, "--num_images", 32)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"32 images of {tiny_dataset} at 16x16 against 32 images of {other}"
    assert lines[1].startswith("SWD x1e3 (16 / average): ") and float(lines[1].split("/ ")[-1]) > 1
    assert lines[2].startswith("MS-SSIM: ") and "(reals " in lines[2] and "16 pairs)" in lines[2]


def test_fakes_from_a_checkpoint(tiny_dataset, tmp_path):
    from pgtools.models.config import resolve_config
    from pgtools.models.loop import train

    tiny = dict(fmap_base=64, fmap_max=16, latent_dim=16, minibatch="8", stabilize_kimg=0.032, transition_kimg=0.032,
                total_kimg=0.136, tick_kimg=0.016, device="cpu", cache_gb=1.0, data_workers=0, outdir=str(tmp_path))
    run_dir = train(resolve_config(str(tiny_dataset), **tiny))  # through the 8 -> 16 fade-in
    result = run("metrics", tiny_dataset, "--fakes", run_dir, "--num_images", 16, "--json")
    assert result.exit_code == 0, result.output
    values = json.loads(result.output)
    assert values["resolution"] == 16 and 0 <= values["ms-ssim"]["fakes"] <= 1 and values["swd"]["average"] > 0
    again = run("metrics", tiny_dataset, "--fakes", run_dir, "--num_images", 16, "--json")
    assert json.loads(again.output) == values  # seeded: the same fakes and reals


def test_errors_are_one_line(tiny_dataset, tmp_path):
    result = run("metrics", tiny_dataset, "--fakes", tiny_dataset, "--num_images", 100)
    assert result.exit_code == 1
    assert result.output == f"Error: {tiny_dataset} holds 64 images; use --num_images 64 or fewer\n"
    result = run("metrics", tiny_dataset, "--fakes", tiny_dataset, "--num_images", 8, "--metric", "fid")
    assert result.exit_code == 1 and "unknown metric 'fid'; available: ms-ssim, swd" in result.output
