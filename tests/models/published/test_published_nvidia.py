"""NVIDIA TF release pickles: the genuine fixture against the original's outputs; self-made
pickles (written from known pgtools weights in the same layout) for the other G_paper options."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import DATA, tf_networks, write_tf_pickle

from pgtools.errors import PgtoolsError
from pgtools.models import load
from pgtools.models.api import to_uint8
from pgtools.models.networks import EqualConv2d, FusedConvDown2d, FusedUpConv2d
from pgtools.models.published import NVIDIA, read_published, sniff
from pgtools.models.published.nvidia import from_pgtools, to_pgtools
from pgtools.models.published.tfpickle import read_tf_pickle

OFFICIAL = DATA / "nv_official.pkl"


def test_official_pickle_reproduces_the_original_outputs():  # compared with the TF code's own output
    reference = np.load(DATA / "nv_official-ref.npz")
    model = load(OFFICIAL, device="cpu")
    assert (model.resolution, model.alpha, model.output_resolution, model.kimg) == (32, 1.0, 32, None)
    assert (model.latent_dim, model.num_classes, model.channels) == (32, 0, 3)
    images = model.generate(torch.from_numpy(reference["latents"]), batch_size=3)
    np.testing.assert_allclose(images.numpy(), reference["images"], rtol=0, atol=1e-4)
    assert images.max() > 1  # the original's range, not clamped
    assert torch.equal(model.test(torch.from_numpy(reference["latents"])), model.generate(
        torch.from_numpy(reference["latents"])))  # pytorch_GAN_zoo's name works on NVIDIA files too
    assert to_uint8(images).max() == 255


def test_official_pickle_g_d_and_gs(tmp_path):
    G, D, Gs = read_tf_pickle(OFFICIAL)
    assert (G.name, D.name, Gs.name) == ("G_paper", "D_paper", "Gs") and "def G_paper(" in G.build_module_src
    for net, role in ((G, "generator"), (D, "discriminator"), (Gs, "generator")):
        module, options = to_pgtools(net, role)
        back = from_pgtools(module, options, role, float(net.variables["lod"]))
        assert back.keys() == net.variables.keys()
        assert all(np.array_equal(back[name], net.variables[name]) for name in back)  # both directions, exactly
    z = torch.from_numpy(np.load(DATA / "nv_official-ref.npz")["latents"])
    gs, g = load(OFFICIAL, device="cpu").generate(z), load(OFFICIAL, device="cpu", network="G").generate(z)
    assert not torch.allclose(gs, g)  # G and Gs were randomised independently
    nets = read_published(OFFICIAL)
    assert nets.options["D"]["mbstd_group_size"] == D.static_kwargs["mbstd_group_size"] == 16
    with torch.no_grad():
        scores = nets.discriminator(gs)
    assert scores.shape == (8,) and torch.isfinite(scores).all()
    with pytest.raises(PgtoolsError, match="network 'D': choose Gs or G"):
        load(OFFICIAL, device="cpu", network="D")


def test_fused_ops_equal_upsample_then_conv_and_conv_then_pool():
    """TF's upscale2d_conv2d is a transposed convolution: it equals nearest upsampling followed by
    a conv with the kernel rotated by 180 degrees; conv2d_downscale2d equals conv then 2x2 pooling."""
    torch.manual_seed(0)
    x = torch.randn(2, 5, 6, 6)
    plain, up, down = EqualConv2d(5, 7, 3), FusedUpConv2d(5, 7, 3), FusedConvDown2d(5, 7, 3)
    plain.bias.data.normal_()
    for fused in (up, down):
        fused.load_state_dict(plain.state_dict())
    upsampled = F.interpolate(x, scale_factor=2.0, mode="nearest")
    expected = F.conv2d(upsampled, plain.weight.flip(2, 3) * plain.scale, plain.bias, padding=1)
    torch.testing.assert_close(up(x), expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(down(x), F.avg_pool2d(plain(x), 2), rtol=0, atol=1e-5)


def _linear_structure(G, z, labels, lod):  # TF's 'linear' G_paper graph, written out with pgtools' blocks
    final = G.resolution
    x = G.blocks["4"](G._input(z, labels))
    images = G.to_rgb["4"](x)
    for log2 in range(3, final.bit_length()):
        res, level = 1 << log2, final.bit_length() - 1 - log2
        x = G.blocks[str(res)](x)
        t = min(max(lod - level, 0.0), 1.0)
        upscaled = F.interpolate(images, scale_factor=2.0, mode="nearest")
        images = G.to_rgb[str(res)](x) + (upscaled - G.to_rgb[str(res)](x)) * t
    return images


@pytest.mark.parametrize("kwargs, lod, protocol", [
    (dict(fused_scale=True), 0.0, 4),  # the release train.py's default
    (dict(fused_scale=True, latent_size=24), 1.5, 2),  # another latent size, saved mid fade-in
    (dict(fused_scale=False, label_size=3), 1.0, 4),  # labels, saved at a lower resolution
    (dict(fused_scale=True, resolution=32, label_size=2), 0.25, 5),
])
def test_self_made_pickles_with_other_options(tf_pickle, kwargs, lod, protocol):  # self-made: no original outputs
    path, modules = tf_pickle(lod=lod, protocol=protocol, **kwargs)
    assert sniff(path) == NVIDIA
    model = load(path, device="cpu")
    final, classes = kwargs.get("resolution", 16), kwargs.get("label_size", 0)
    assert model.output_resolution == final and model.num_classes == classes
    assert model.latent_dim == kwargs.get("latent_size", 16)
    z = model.build_noise(4, seed=1)
    labels = model.random_labels(4, seed=2)
    images = model.generate(z, labels)
    assert images.shape == (4, 3, final, final)  # full size, as the TF graph returns at any lod
    onehot = None if labels is None else F.one_hot(labels, classes).float()
    with torch.no_grad():
        expected = _linear_structure(modules["Gs"].eval(), z, onehot, lod)
    torch.testing.assert_close(images, expected, rtol=0, atol=1e-5)
    nets = read_published(path)
    for name in ("G", "Gs"):
        assert all(torch.equal(a, b) for a, b in zip(nets.generator(name).state_dict().values(),
                                                      modules[name].state_dict().values()))
    assert all(torch.equal(a, b) for a, b in zip(nets.discriminator.state_dict().values(),
                                                  modules["D"].state_dict().values()))
    with torch.no_grad():
        assert nets.discriminator(images).shape == ((4,) if not classes else (4, 1 + classes))


@pytest.mark.parametrize("change, message", [
    (dict(use_wscale=False), "G_paper option use_wscale=False; pgtools supports only use_wscale=True"),
    (dict(fmap_decay=0.5), "option fmap_decay=0.5"),
    (dict(normalize_latents=False), "option normalize_latents=False"),
    (dict(dtype="float16"), "option dtype='float16'"),
])
def test_unsupported_options_are_refused_by_name(tmp_path, change, message):
    states, _ = tf_networks()
    for state in states:
        state["static_kwargs"].update(change)
    path = write_tf_pickle(tmp_path / "odd.pkl", states)
    with pytest.raises(PgtoolsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(path, device="cpu")


def test_other_build_functions_and_missing_variables_are_refused(tmp_path):
    states, _ = tf_networks()
    states[0]["build_func_name"] = "G_mnist_mode_recovery"
    with pytest.raises(PgtoolsError, match="built by 'G_mnist_mode_recovery'; pgtools maps the TF release's G_paper"):
        load(write_tf_pickle(tmp_path / "a.pkl", states), device="cpu")
    states, _ = tf_networks()
    del states[2]["variables"]["8x8/Conv1/bias"]
    with pytest.raises(PgtoolsError, match=r"missing \['8x8/Conv1/bias'\]"):
        load(write_tf_pickle(tmp_path / "b.pkl", states), device="cpu")


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return open, (str(self.target), "w")


@pytest.mark.parametrize("where", ["top", "inside a network"])
def test_a_reduce_payload_is_refused_and_never_runs(tmp_path, where):
    target = tmp_path / "pwned"
    if where == "top":
        data = pickle.dumps(_Payload(target), protocol=4)
    else:
        states, _ = tf_networks()
        states[2]["variables"]["lod"] = _Payload(target)
        data = write_tf_pickle(tmp_path / "tmp.pkl", states).read_bytes()
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    with pytest.raises(PgtoolsError, match=r"refusing to load (builtins|io)\.open from the pickle") as err:
        load(path, device="cpu")
    assert str(err.value).count("\n") == 0
    assert not target.exists()


def test_stylegan_pickles_and_other_files_get_clear_errors(tmp_path):
    path = tmp_path / "stylegan.pkl"
    path.write_bytes(b"\x80\x02cdnnlib.tflib.network\nNetwork\n)\x81.")  # GLOBAL, NEWOBJ
    with pytest.raises(PgtoolsError, match="dnnlib.tflib.network.Network .*StyleGAN"):
        load(path, device="cpu")
    path.write_bytes(pickle.dumps({"not": "networks"}))
    with pytest.raises(PgtoolsError, match=r"expected a pickled tuple \(G, D, Gs\) of tfutil.Network"):
        load(path, device="cpu")
