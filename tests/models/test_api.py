"""The Python API: load a checkpoint, build noise, generate; pytorch_GAN_zoo-style aliases; walks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pgtools.errors import PgtoolsError
from pgtools.models import load
from pgtools.models.api import to_uint8
from pgtools.models.checkpoint import load_checkpoint
from pgtools.models.networks import Generator
from pgtools.models.walk import latent_walk, slerp, write_frames

pytestmark = pytest.mark.usefixtures("one_thread")


def test_load_generates_with_the_ema_generator_at_the_saved_phase(trained_run):
    model = load(trained_run, device="cpu")
    assert (model.resolution, model.alpha, model.kimg) == (8, 0.5, 0.048)
    assert (model.latent_dim, model.num_classes, model.channels) == (16, 0, 3)
    assert not model.generator.training and not any(p.requires_grad for p in model.generator.parameters())
    z = model.build_noise(5, seed=3)
    assert torch.equal(z, model.build_noise(5, seed=3)) and not torch.equal(z, model.build_noise(5, seed=4))
    images = model.generate(z, batch_size=2)
    assert images.shape == (5, 3, 8, 8) and images.dtype == torch.float32
    state = load_checkpoint(trained_run)
    reference = Generator(**state["networks"]["G"])
    reference.load_state_dict(state["G_ema"])
    with torch.no_grad():
        expected = reference(z, resolution=8, alpha=0.5)  # unclamped, as the network outputs
    torch.testing.assert_close(images, expected, rtol=1e-4, atol=1e-5)  # batches of 2 vs one of 5


def test_pytorch_gan_zoo_aliases(trained_run):
    model = load(trained_run / "latest.pt", device="cpu")
    z, labels = model.buildNoiseData(4)
    assert z.shape == (4, 16) and labels is None
    assert torch.equal(model.test(z), model.generate(z)) and model.test(z, toCPU=False).device.type == "cpu"


def test_conditional_model_needs_labels(conditional_run):
    model = load(conditional_run, device="cpu")
    assert model.num_classes == 3 and model.resolution == 4
    z = model.build_noise(6, seed=0)
    with pytest.raises(PgtoolsError, match=r"this model is conditional \(3 classes\): pass labels"):
        model.generate(z)
    labels = model.random_labels(6, seed=1)
    assert labels.tolist() == model.random_labels(6, seed=1).tolist() and set(labels.tolist()) <= {0, 1, 2}
    latents, classes = model.buildNoiseData(6)
    assert latents.shape == (6, 16 + 3)
    assert torch.equal(latents[:, 16:].argmax(1), classes)
    assert torch.equal(model.test(latents), model.generate(latents[:, :16], classes))


def test_to_uint8_rounds_half_to_even_and_clips():
    values = torch.tensor([-2.0, -1.0, 1 / 127.5 * 0.5 - 1, 1 / 127.5 * 1.5 - 1, 0.0, 1.0, 3.0]).reshape(1, 1, 1, 7)
    assert to_uint8(values).ravel().tolist() == [0, 0, 0, 2, 128, 255, 255]


def test_latent_walks():
    keys = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    walk = latent_walk(keys, 4, method="lerp")
    assert walk.shape == (9, 8) and torch.equal(walk[0], keys[0]) and torch.equal(walk[-1], keys[2])
    torch.testing.assert_close(walk[2], (keys[0] + keys[1]) / 2)
    looped = latent_walk(keys, 4, loop=True)
    assert looped.shape == (12, 8)
    torch.testing.assert_close(looped[4], keys[1])
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    torch.testing.assert_close(slerp(a, b, 0.5), torch.tensor([0.5, 1.0]) * 2**0.5)
    with pytest.raises(PgtoolsError, match="unknown interpolation 'cubic'; choose slerp or lerp"):
        latent_walk(keys, 4, method="cubic")


def test_write_frames_into_a_used_folder_never_removes_other_files(tmp_path):
    """generate --outdir and interpolate FOLDER: --overwrite replaces frames, keeps everything else."""
    folder = tmp_path / "gendir"
    (folder / "sub").mkdir(parents=True)
    (folder / "keep.txt").write_text("mine")
    (folder / "sub" / "photo.jpg").write_bytes(b"jpeg")
    frames = np.arange(2 * 3 * 4 * 4, dtype=np.uint8).reshape(2, 3, 4, 4)
    assert write_frames(frames, folder, name="image") == 2  # no clash: the folder may hold other things
    with pytest.raises(PgtoolsError, match=r"gendir already holds image000000.png, image000001.png \(use --overwrite"):
        write_frames(frames[::-1], folder, name="image")
    assert write_frames(frames[::-1], folder, name="image", overwrite=True) == 2
    assert sorted(p.name for p in folder.iterdir()) == ["image000000.png", "image000001.png", "keep.txt", "sub"]
    assert (folder / "keep.txt").read_text() == "mine" and (folder / "sub" / "photo.jpg").read_bytes() == b"jpeg"
    np.testing.assert_array_equal(np.asarray(Image.open(folder / "image000000.png")), frames[1].transpose(1, 2, 0))
    assert not [p for p in tmp_path.rglob("*") if ".partial" in p.name]
