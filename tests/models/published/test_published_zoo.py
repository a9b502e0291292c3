"""pytorch_GAN_zoo checkpoints: the genuine fixture against the zoo's own outputs; self-made
checkpoints (same format, known weights) for each way the zoo's networks differ from NVIDIA's."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import DATA, write_zoo

from pgtools.errors import PgtoolsError
from pgtools.models import load
from pgtools.models.networks import EqualConv2d, minibatch_stddev
from pgtools.models.published import ZOO, read_published, sniff
from pgtools.models.published.zoo import RENAMES, ZooDiscriminator, ZooGenerator, zoo_minibatch_stddev

GENUINE = DATA / "zoo_pgan.pth"
CONFIG = dict(depthScale0=16, depthOtherScales=[8, 8], latentVectorDim=12, noiseVectorDim=12, dimOutput=3,
              leakyReluLeak=0.2, perChannelNormalization=True, equalizedlR=True, alpha=0, categoryVectorDim=0,
              lossCriterion="WGANGP", miniBatchStdDev=False, initBiasToZero=True)


def zoo_keys(generator: ZooGenerator, module: bool = True) -> dict:
    """A ZooGenerator's weights under the zoo's state-dict names (with or without ``.module.``)."""
    state = {}
    for key, value in generator.state_dict().items():
        for zoo, ours in RENAMES:
            if key.startswith(ours):
                key = zoo + key[len(ours):]
        state[key.replace(".layer.", ".module." if module else ".")] = value.clone()
    return state


def random_zoo(seed: int = 0, **config) -> tuple[ZooGenerator, dict]:
    config = {**CONFIG, **config}
    torch.manual_seed(seed)
    generator = ZooGenerator(config["latentVectorDim"], [config["depthScale0"], *config["depthOtherScales"]])
    with torch.no_grad():
        for name, param in generator.named_parameters():
            param.normal_(0, 1 if name.endswith("weight") else 0.3)
    return generator, config


def test_genuine_checkpoint_reproduces_the_zoo_outputs():  # compared with the zoo's own test()
    reference = np.load(DATA / "zoo_pgan-ref.npz")
    z = torch.from_numpy(reference["latents"])
    assert sniff(GENUINE) == ZOO
    model = load(GENUINE, device="cpu")
    assert (model.resolution, model.alpha, model.latent_dim, model.channels) == (32, 1.0, 64, 3)
    np.testing.assert_allclose(model.test(z).numpy(), reference["images"], rtol=0, atol=1e-4)  # avgG
    raw = load(GENUINE, device="cpu", network="G").generate(z, batch_size=3)  # netG
    np.testing.assert_allclose(raw.numpy(), reference["images_netG"], rtol=0, atol=1e-4)
    latents, labels = model.buildNoiseData(5)
    assert latents.shape == (5, 64) and labels is None


def test_zoo_layers_scale_their_bias_unlike_nvidia():
    """Difference 1: the zoo multiplies conv output *and bias* by sqrt(2 / fan_in)."""
    torch.manual_seed(0)
    generator, _ = random_zoo()
    layer = generator.scale0
    x = torch.randn(2, 16, 4, 4)
    c = math.sqrt(2 / (16 * 9))
    expected = F.conv2d(x, layer.layer.weight * c, layer.layer.bias * c, padding=1)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-5)
    ours = EqualConv2d(16, 16, 3)
    ours.load_state_dict({"weight": layer.layer.weight, "bias": layer.layer.bias})
    assert not torch.allclose(ours(x), layer(x))  # pgtools (as NVIDIA) adds the bias unscaled


def test_dense_and_to_rgb_gains_and_per_unit_dense_bias():
    """Differences 2, 3: the 4x4 dense layer has gain sqrt(2) and 16 biases per channel; toRGB gain sqrt(2)."""
    generator, _ = random_zoo()
    assert generator.format_layer.layer.bias.shape == (16 * 16,)  # NVIDIA: (16,) one per channel
    assert generator.format_layer.scale == pytest.approx(math.sqrt(2 / 12))  # NVIDIA: sqrt(2)/4/sqrt(12)
    assert generator.to_rgb[-1].scale == pytest.approx(math.sqrt(2 / 8))  # NVIDIA: 1/sqrt(8)


@pytest.mark.parametrize("module, legacy", [(True, False), (False, False), (True, True)])
def test_self_made_checkpoint_loads_both_key_styles(tmp_path, module, legacy):
    """State dicts with and without the ConstrainedLayer '.module.'; zip and legacy torch files."""
    generator, config = random_zoo()
    path = write_zoo(tmp_path / "zoo.pth", config, zoo_keys(generator, module), legacy=legacy)
    assert sniff(path) == ZOO
    z = torch.randn(3, 12)
    with torch.no_grad():
        expected = generator(z, resolution=16)
    torch.testing.assert_close(load(path, device="cpu").generate(z), expected, rtol=0, atol=0)


def test_fade_in_alpha_is_the_weight_of_the_old_image(tmp_path):
    """Difference 4: the zoo's alpha weights the upsampled lower-resolution image (pgtools: 1 - alpha)."""
    generator, config = random_zoo()
    path = write_zoo(tmp_path / "fade.pth", {**config, "alpha": 0.3}, zoo_keys(generator))
    model = load(path, device="cpu")
    assert model.alpha == pytest.approx(0.7) and read_published(path).lod == pytest.approx(0.3)
    smaller = ZooGenerator(12, [16, 8])  # the same weights without the newest scale
    smaller.load_state_dict({k: v for k, v in generator.state_dict().items()
                             if not k.startswith(("blocks.1.", "to_rgb.2."))})
    z = torch.randn(4, 12)
    with torch.no_grad():
        old = F.interpolate(smaller(z, resolution=8), scale_factor=2.0, mode="nearest")
        expected = 0.3 * old + 0.7 * generator(z, resolution=16)
    torch.testing.assert_close(model.generate(z), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("loss, tanh", [("WGANGP", False), ("DCGAN", True), ("MSE", True)])
def test_losses_with_a_tanh_output(tmp_path, loss, tanh):
    """Difference 5: the zoo ends G with tanh for its MSE and DCGAN losses."""
    generator, config = random_zoo()
    z = torch.randn(2, 12)
    path = write_zoo(tmp_path / "g.pth", {**config, "lossCriterion": loss}, zoo_keys(generator))
    with torch.no_grad():
        linear = generator(z, resolution=16)
    torch.testing.assert_close(load(path, device="cpu").generate(z), torch.tanh(linear) if tanh else linear)


def test_without_equalized_learning_rate(tmp_path):
    """Difference 6: equalizedlR=False uses the stored weights as they are."""
    generator, config = random_zoo()
    plain = {}
    for key, value in zoo_keys(generator).items():
        layer = key.rsplit(".module.", 1)[0]
        fan_in = math.prod(zoo_keys(generator)[layer + ".module.weight"].shape[1:])
        plain[key] = value * math.sqrt(2 / fan_in)  # (W x + b) c == (W c) x + b c
    a = write_zoo(tmp_path / "a.pth", config, zoo_keys(generator))
    b = write_zoo(tmp_path / "b.pth", {**config, "equalizedlR": False}, plain)
    z = torch.randn(3, 12)
    torch.testing.assert_close(load(b, device="cpu").generate(z), load(a, device="cpu").generate(z),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("change, message", [
    (dict(categoryVectorDim=3, attribKeysOrder={"Type": {"order": 0}}), "conditional .*only unconditional"),
    (dict(perChannelNormalization=False), "perChannelNormalization=False"),
    (dict(lossCriterion="Hinge"), "lossCriterion 'Hinge' is unknown"),
])
def test_unsupported_zoo_models_are_refused(tmp_path, change, message):
    generator, config = random_zoo()
    path = write_zoo(tmp_path / "odd.pth", {**config, **change}, zoo_keys(generator))
    with pytest.raises(PgtoolsError, match=message):
        load(path, device="cpu")


def test_mismatched_weights_are_refused(tmp_path):
    generator, config = random_zoo()
    path = write_zoo(tmp_path / "odd.pth", {**config, "depthOtherScales": [8, 4]}, zoo_keys(generator))
    with pytest.raises(PgtoolsError, match="avgG does not match its config"):
        load(path, device="cpu")


def test_genuine_discriminator_loads():
    nets = read_published(GENUINE)
    D = nets.discriminator
    assert (D.resolution, D.mbstd) == (32, False) and D.dense.layer.weight.shape == (64, 64 * 16)
    with torch.no_grad():
        scores = D(nets.generator("Gs")(torch.randn(4, 64), resolution=32))
    assert scores.shape == (4,) and torch.isfinite(scores).all()


def test_zoo_minibatch_stddev_groups_and_assignment():
    """Difference 7: unbiased variance, one group when G does not divide N, statistic of group i // G."""
    x = torch.randn(8, 3, 2, 2)
    out = zoo_minibatch_stddev(x)
    strided = [[0, 2, 4, 6], [1, 3, 5, 7]]  # the groups, formed as NVIDIA's reshape forms them
    stats = [(x[members].var(dim=0, unbiased=True) + 1e-8).sqrt().mean() for members in strided]
    expected = torch.tensor([stats[0]] * 4 + [stats[1]] * 4)  # ... but handed out to consecutive samples
    torch.testing.assert_close(out[:, 3, 0, 0], expected)
    assert torch.equal(out[:, :3], x)
    assert not torch.allclose(minibatch_stddev(x)[:, 3, 0, 0], expected)  # pgtools / NVIDIA differ
    six = torch.randn(6, 2, 2, 2)
    whole = (six.var(dim=0) + 1e-8).sqrt().mean()
    torch.testing.assert_close(zoo_minibatch_stddev(six)[:, 2], whole.expand(6, 2, 2))


def test_discriminator_fade_in_skips_the_first_added_scale():
    """Difference 8: DNet blends only from its second added scale on (GNet blends at the first)."""
    torch.manual_seed(0)
    images = torch.randn(4, 3, 8, 8)
    small = ZooDiscriminator([8, 4])
    assert torch.equal(small(images, alpha=0.4), small(images, alpha=1.0))
    big = ZooDiscriminator([8, 4, 4])
    lower = ZooDiscriminator([8, 4])  # the same weights without the newest scale
    lower.load_state_dict({k: v for k, v in big.state_dict().items() if not k.startswith(("blocks.1.", "from_rgb.2."))})
    images = torch.randn(4, 3, 16, 16)
    old = F.leaky_relu(big.from_rgb[1](F.avg_pool2d(images, 2)), 0.2)
    new = F.avg_pool2d(F.leaky_relu(big.blocks[1][1](F.leaky_relu(big.blocks[1][0](
        F.leaky_relu(big.from_rgb[2](images), 0.2)), 0.2)), 0.2), 2)
    x = 0.6 * old + 0.4 * new
    for conv in big.blocks[0]:
        x = F.leaky_relu(conv(x), 0.2)
    x = F.avg_pool2d(x, 2)
    x = F.leaky_relu(big.scale0(x), 0.2)
    expected = big.decision(F.leaky_relu(big.dense(x.flatten(1)), 0.2))[:, 0]
    torch.testing.assert_close(big(images, alpha=0.4), expected, rtol=0, atol=1e-6)
