"""Tests for the Progressive GAN networks: layers, fade-in continuity, dtypes and formats."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pgtools.models.networks import (
    Discriminator,
    EqualConv2d,
    EqualLinear,
    Generator,
    features,
    minibatch_stddev,
    pixel_norm,
)

TINY = dict(fmap_base=64, fmap_max=16)  # 16 maps at 4 and 8, 8 at 16


def tiny_pair(num_classes: int = 0, resolution: int = 16):
    torch.manual_seed(0)
    G = Generator(resolution, latent_dim=16, num_classes=num_classes, **TINY)
    D = Discriminator(resolution, num_classes=num_classes, **TINY)
    return G, D


def test_equal_conv2d_scales_weights_at_run_time():
    torch.manual_seed(1)
    conv = EqualConv2d(5, 7, 3)
    with torch.no_grad():
        conv.bias.copy_(torch.arange(7.0))
    x = torch.randn(2, 5, 6, 6)
    scale = math.sqrt(2) / math.sqrt(5 * 3 * 3)  # gain / sqrt(fan_in)
    expected = F.conv2d(x, conv.weight * scale, conv.bias, padding=1)
    torch.testing.assert_close(conv(x), expected, rtol=0, atol=0)
    assert conv(x).shape == (2, 7, 6, 6)

    rgb = EqualConv2d(4, 3, 1, gain=1.0)
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(rgb(x), F.conv2d(x, rgb.weight / 2.0, rgb.bias), rtol=0, atol=0)


def test_equal_linear_scales_weights_at_run_time():
    torch.manual_seed(2)
    dense = EqualLinear(9, 4, gain=1.0)
    x = torch.randn(3, 9)
    torch.testing.assert_close(dense(x), F.linear(x, dense.weight * (1 / 3.0), dense.bias),
                               rtol=0, atol=0)
    default = EqualLinear(16, 2, bias=False)
    assert default.bias is None
    torch.testing.assert_close(default(x.new_ones(1, 16)),
                               (default.weight.sum(1) * math.sqrt(2) / 4).unsqueeze(0))


def test_equalized_init_is_standard_normal_with_zero_bias():
    torch.manual_seed(3)
    conv = EqualConv2d(256, 256, 3)
    w = conv.weight.detach().double()
    assert abs(w.mean().item()) < 0.005 and abs(w.std().item() - 1.0) < 0.005
    assert torch.count_nonzero(conv.bias) == 0


def test_pixel_norm_matches_hand_computation():
    x = torch.tensor([[[[3.0]], [[4.0]]], [[[0.0]], [[2.0]]]])  # (2, 2, 1, 1)
    # sample 0: mean square (9 + 16) / 2 = 12.5; sample 1: (0 + 4) / 2 = 2
    expected = torch.tensor([[[[3 / math.sqrt(12.5 + 1e-8)]], [[4 / math.sqrt(12.5 + 1e-8)]]],
                             [[[0.0]], [[2 / math.sqrt(2 + 1e-8)]]]])
    torch.testing.assert_close(pixel_norm(x), expected, rtol=1e-7, atol=0)
    z = torch.tensor([[1.0, -1.0, 1.0, -1.0]])  # 2-D latents normalise over dim 1 too
    torch.testing.assert_close(pixel_norm(z, eps=0.0), z)


def mbstd_by_loop(x: np.ndarray, group_size: int) -> np.ndarray:
    n, c, h, w = x.shape
    g = min(group_size, n)
    m = n // g
    out = np.zeros((n, c + 1, h, w))
    out[:, :c] = x
    for j in range(m):
        members = [j + k * m for k in range(g)]
        std = np.sqrt(x[members].var(axis=0) + 1e-8)  # population variance
        for i in members:
            out[i, c] = std.mean()
    return out


@pytest.mark.parametrize("n,group", [(8, 4), (12, 4), (3, 4), (4, 16), (6, 2)])
def test_minibatch_stddev_matches_loop(n, group):
    torch.manual_seed(n)
    x = torch.randn(n, 3, 4, 5)
    got = minibatch_stddev(x, group).numpy()
    np.testing.assert_allclose(got, mbstd_by_loop(x.double().numpy(), group), rtol=1e-6, atol=0)


def test_minibatch_stddev_groups_are_strided():
    # Strided groups of 8 with G=4 are {0,2,4,6} and {1,3,5,7}: each constant here, so the
    # statistic is sqrt(1e-8); contiguous groups {0..3} would see a spread of 5.
    x = (torch.arange(8) % 2 * 5.0).reshape(8, 1, 1, 1).expand(8, 2, 3, 3)
    stat = minibatch_stddev(x, 4)[:, 2]
    torch.testing.assert_close(stat, torch.full((8, 3, 3), 1e-4))


def test_minibatch_stddev_rejects_indivisible_batch():
    with pytest.raises(ValueError, match="minibatch of 6 samples is not divisible by the group "
                                         "size 4"):
        minibatch_stddev(torch.zeros(6, 2, 4, 4), 4)


def test_features_table():
    table = {res: features(res) for res in (4, 8, 16, 32, 64, 128, 256, 512, 1024)}
    assert table == {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32,
                     1024: 16}
    assert [features(r, **TINY) for r in (4, 8, 16)] == [16, 16, 8]
    with pytest.raises(ValueError, match="power of two"):
        features(48)


def test_paper_parameter_counts():
    # The paper's table 2: 23.1M parameters in each network at 1024x1024.
    assert sum(p.numel() for p in Generator(1024).parameters()) == 23_079_115
    assert sum(p.numel() for p in Discriminator(1024).parameters()) == 23_087_249


def test_shapes_at_every_working_resolution():
    G, D = tiny_pair()
    z = G.build_noise(4, torch.Generator().manual_seed(0))
    assert z.shape == (4, 16)
    for res in (4, 8, 16):
        alpha = 1.0 if res == 4 else 0.25
        images = G(z, resolution=res, alpha=alpha)
        assert images.shape == (4, 3, res, res)
        assert D(images, alpha=alpha).shape == (4,)


def test_generator_normalises_latent():
    G, _ = tiny_pair()
    z = torch.randn(4, 16)
    torch.testing.assert_close(G(z, resolution=8), G(z * 7.5, resolution=8))


def test_generator_fade_in_at_alpha_zero_is_upsampled_lower_output():
    G, _ = tiny_pair()
    z = torch.randn(4, 16)
    for res in (8, 16):
        low = G(z, resolution=res // 2)
        grown = G(z, resolution=res, alpha=0.0)
        torch.testing.assert_close(grown, low.repeat_interleave(2, 2).repeat_interleave(2, 3),
                                   rtol=0, atol=1e-6)


def test_generator_fade_in_is_linear_in_alpha():
    G, _ = tiny_pair()
    z = torch.randn(4, 16)
    old = G(z, resolution=16, alpha=0.0)
    new = G(z, resolution=16, alpha=1.0)
    torch.testing.assert_close(G(z, resolution=16, alpha=0.3), old + 0.3 * (new - old))


def test_discriminator_fade_in_at_alpha_zero_is_pooled_lower_input():
    _, D = tiny_pair()
    images = torch.randn(8, 3, 16, 16)
    for res in (8, 16):
        img = images if res == 16 else F.avg_pool2d(images, 2)
        torch.testing.assert_close(D(img, alpha=0.0), D(F.avg_pool2d(img, 2), alpha=1.0),
                                   rtol=0, atol=1e-6)


def test_conditional_networks():
    G, D = tiny_pair(num_classes=5)
    z = torch.randn(4, 16)
    labels = torch.tensor([0, 4, 2, 2])
    images = G(z, labels, resolution=8)
    torch.testing.assert_close(images, G(z, F.one_hot(labels, 5).float(), resolution=8))
    assert not torch.allclose(images, G(z, torch.tensor([1, 1, 1, 1]), resolution=8))
    assert D(images).shape == (4, 6)
    with pytest.raises(ValueError, match="labels are required"):
        G(z, resolution=8)
    with pytest.raises(ValueError, match="unconditional"):
        tiny_pair()[0](z, labels, resolution=8)


def test_bad_working_resolution_or_alpha():
    G, D = tiny_pair()
    z = torch.randn(4, 16)
    with pytest.raises(ValueError, match="outside 4..16"):
        G(z, resolution=32)
    with pytest.raises(ValueError, match="power of two"):
        G(z, resolution=12)
    with pytest.raises(ValueError, match="needs a working resolution above 4"):
        G(z, resolution=4, alpha=0.5)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        D(torch.zeros(4, 3, 8, 8), alpha=1.5)
    with pytest.raises(ValueError, match=r"expected images \(N, 3, r, r\)"):
        D(torch.zeros(4, 1, 8, 8))
    with pytest.raises(ValueError, match="at least 4"):
        Generator(2)


def test_channels_last_gives_the_same_results():
    G, D = tiny_pair()
    z = torch.randn(4, 16)
    images = torch.randn(4, 3, 16, 16)
    Gc = copy.deepcopy(G).to(memory_format=torch.channels_last)
    Dc = copy.deepcopy(D).to(memory_format=torch.channels_last)
    torch.testing.assert_close(Gc(z, resolution=16, alpha=0.5), G(z, resolution=16, alpha=0.5))
    torch.testing.assert_close(Dc(images.to(memory_format=torch.channels_last), alpha=0.5),
                               D(images, alpha=0.5))


def test_bfloat16_autocast_forward_and_backward():
    G, D = tiny_pair(num_classes=3)
    z = torch.randn(4, 16)
    labels = torch.tensor([0, 1, 2, 0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        images = G(z, labels, resolution=16, alpha=0.5)
        out = D(images, alpha=0.5)
    assert images.dtype == torch.bfloat16 and out.shape == (4, 4)
    out.float().sum().backward()
    grads = [p.grad for p in G.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    reference = D(G(z, labels, resolution=16, alpha=0.5), alpha=0.5)
    torch.testing.assert_close(out.float(), reference, rtol=0.1, atol=0.1)
