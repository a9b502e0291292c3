"""generate, interpolate, inspect, convert and train --init on published network files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import DATA
from PIL import Image

from pgtools.cli import main
from pgtools.models import load
from pgtools.models.api import to_uint8
from pgtools.models.checkpoint import load_checkpoint
from pgtools.pyramid import write_pyramid

NV, ZOO = DATA / "nv_official.pkl", DATA / "zoo_pgan.pth"
TINY = ["--minibatch", "8", "--stabilize_kimg", "0.032", "--transition_kimg", "0.032", "--tick_kimg", "0.008",
        "--device", "cpu", "--cache_gb", "1", "--data_workers", "0"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("file", [NV, ZOO])
def test_generate_and_interpolate(tmp_path, file):
    result = run("generate", file, "--count", "3", "--outdir", tmp_path / "images", "--seed", "5", "--device", "cpu")
    assert result.exit_code == 0, result.output
    model = load(file, device="cpu")
    expected = to_uint8(model.generate(model.build_noise(3, seed=5)))
    written = [np.asarray(Image.open(tmp_path / "images" / f"image{i:06d}.png")).transpose(2, 0, 1) for i in range(3)]
    assert np.array_equal(np.stack(written), expected)
    result = run("interpolate", file, tmp_path / "frames", "--keyframes", "2", "--frames", "2", "--no-loop",
                 "--device", "cpu", "--quiet")
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "frames").glob("*.png"))) == 3


def test_inspect_describes_network_files():
    result = run("inspect", NV)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1] == "Kind                NVIDIA TF release pickle (G, D, Gs)"
    assert "Resolution          32x32" in lines and "Latent size         32" in lines
    assert "Parameters          Gs 53,124, G 53,124, D 53,545" in lines
    info = json.loads(run("inspect", ZOO, "--json").output)
    assert (info["kind"], info["resolution"], info["latent_size"], info["label_size"]) == ("pytorch-gan-zoo", 32, 64, 0)
    assert info["parameters"] == {"Gs": 140260, "G": 140260, "D": 139529} and info["settings"]["depthOtherScales"] == [32, 16, 8]


def test_convert_round_trip_and_errors(tmp_path):
    out = tmp_path / "nv.pt"
    result = run("convert", NV, out)
    assert result.exit_code == 0 and result.output == f"Wrote {out}\n"
    z = torch.randn(4, 32)
    torch.testing.assert_close(load(out, device="cpu").generate(z), load(NV, device="cpu").generate(z), rtol=0, atol=0)
    state = load_checkpoint(out)
    assert state["position"] == {"resolution": 32, "alpha": 1.0, "lod": 0.0, "kimg": None}
    assert state["networks"]["D"]["mbstd_group_size"] == 16 and state["source"]["kind"] == "nvidia-pickle"
    result = run("convert", NV, out)
    assert result.exit_code == 1 and result.output == f"Error: {out} already exists (use --overwrite to replace it)\n"
    result = run("convert", ZOO, tmp_path / "zoo.pt")
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "a pytorch_GAN_zoo network cannot become a pgtools checkpoint" in result.output
    assert not (tmp_path / "zoo.pt").exists()


@pytest.fixture
def dataset(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (16, 3, 16, 16), dtype=np.uint8)
    path = tmp_path / "dots.h5"
    write_pyramid(path, [images], resolution=16, channels=3)
    return path


def test_train_init_starts_from_the_weights_at_their_lod(tmp_path, tf_pickle, dataset):
    pickle_path, modules = tf_pickle("mid-fade.pkl", lod=1.5, fused_scale=True, fmap_base=64, fmap_max=16)
    init = tmp_path / "init.pt"
    assert run("convert", pickle_path, init).exit_code == 0
    result = run("train", dataset, *TINY, "--init", init, "--fmap_max", "32", "--outdir", tmp_path / "runs")
    assert result.exit_code == 1
    assert result.output == (f"Error: --init {init}: the networks' shape comes from the file; leave out "
                             "--fmap_max 32 (the file has 16)\n")
    result = run("train", dataset, *TINY, "--init", init, "--total_kimg", "0.056", "--outdir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    assert f"starting from the weights of {init} at kimg 0.048 (lod 1.5)" in result.output
    run_dir = tmp_path / "runs" / "00000-dots-16"
    assert json.loads((run_dir / "config.json").read_text())["fused_scale"] is True
    stats = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert stats[0]["resolution"] == 8  # the first step trained 8x8 fading into 16x16, as the file was
    state = load_checkpoint(run_dir / "latest.pt")
    assert state["position"]["nimg"] == 56 and state["networks"]["G"]["fused_scale"] is True
    for name, source in (("G_ema", "Gs"), ("G", "G"), ("D", "D")):
        start = modules[source].state_dict()
        moved = max((state[name][k] - start[k]).abs().max().item() for k in start)
        assert 0 < moved < 0.05, (name, moved)  # one step away from the file's weights
