"""Tests for the WGAN-GP loss: penalty with its 2^k scaling, drift, label terms, gradients."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pgtools.models.loss import WGANGPLoss
from pgtools.models.networks import Discriminator, Generator

TINY = dict(fmap_base=64, fmap_max=16)


class FixedG(nn.Module):
    """A generator that returns given images, whatever its input."""

    def __init__(self, fakes: torch.Tensor, num_classes: int = 0):
        super().__init__()
        self.fakes = nn.Parameter(fakes.clone())
        self.num_classes = num_classes

    def forward(self, z, labels=None, *, resolution, alpha=1.0):
        assert self.fakes.shape[-1] == resolution
        return self.fakes * 1.0


class LinearD(nn.Module):
    """D(x) = Σ w_c x_c over pixels, so ∇D = w_c at every pixel, ‖∇D‖ = r·‖w‖."""

    num_classes = 0

    def __init__(self, w=(1.0, 2.0, 2.0)):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w).reshape(1, -1, 1, 1))

    def forward(self, x, *, alpha=1.0):
        return (x * self.w).sum(dim=(1, 2, 3))


class QuadraticD(nn.Module):
    """D(x) = ½‖x‖², so ∇D(x̂) = x̂."""

    num_classes = 0

    def forward(self, x, *, alpha=1.0):
        return 0.5 * x.square().sum(dim=(1, 2, 3))


class LabelD(LinearD):
    """A linear score plus label logits proportional to the image mean."""

    num_classes = 3

    def forward(self, x, *, alpha=1.0):
        logits = x.mean(dim=(1, 2, 3))[:, None] * torch.tensor([1.0, -1.0, 0.5], dtype=x.dtype)
        return torch.cat([super().forward(x)[:, None], logits], dim=1)


def images(seed: int, n: int = 4, res: int = 8) -> torch.Tensor:
    return torch.randn(n, 3, res, res, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("halvings,penalty", [(0, 23.0**2), (1, 11.0**2), (3, 2.0**2)])
def test_gradient_penalty_with_known_gradient(halvings, penalty):
    reals, fakes = images(0), images(1)
    D = LinearD()  # ‖∇D‖ = 8 · 3 = 24 at the 8x8 working resolution
    loss_fn = WGANGPLoss(FixedG(fakes), D)
    loss, stats = loss_fn.discriminator_loss(reals, torch.zeros(4, 1), None, resolution=8,
                                             alpha=1.0, gp_halvings=halvings)
    d_real, d_fake = D(reals), D(fakes)
    expected = (d_fake - d_real).mean() + 10.0 * penalty + 0.001 * d_real.square().mean()
    torch.testing.assert_close(loss, expected.detach())
    assert stats["gradient_norm"] == pytest.approx(24.0 / 2**halvings, rel=1e-6)
    assert stats["gradient_penalty"] == pytest.approx(penalty, rel=1e-6)
    assert stats["score_real"] == pytest.approx(d_real.mean().item(), rel=1e-6)
    assert stats["score_fake"] == pytest.approx(d_fake.mean().item(), rel=1e-6)
    assert stats["loss"] == pytest.approx(expected.item(), rel=1e-6)
    assert set(stats) == {"loss", "score_real", "score_fake", "gradient_penalty",
                          "gradient_norm"}


def test_penalty_is_taken_at_the_interpolate_drawn_from_torch_rng():
    reals, fakes = images(2), images(3)
    loss_fn = WGANGPLoss(FixedG(fakes), QuadraticD(), drift=0.0)
    torch.manual_seed(7)
    loss, stats = loss_fn.discriminator_loss(reals, torch.zeros(4, 1), None, resolution=8,
                                             alpha=1.0, gp_halvings=2)
    torch.manual_seed(7)
    u = torch.rand(4, 1, 1, 1)
    mixed = reals + u * (fakes - reals)
    norm = mixed.flatten(1).norm(dim=1) / 4.0  # ∇D(x̂) = x̂; 2 halvings
    expected = (0.5 * fakes.square().sum((1, 2, 3)) - 0.5 * reals.square().sum((1, 2, 3))
                + 10.0 * (norm - 1.0).square()).mean()
    torch.testing.assert_close(loss, expected.detach())
    assert stats["gradient_norm"] == pytest.approx(norm.mean().item(), rel=1e-6)

    torch.manual_seed(7)
    again, _ = loss_fn.discriminator_loss(reals, torch.zeros(4, 1), None, resolution=8,
                                          alpha=1.0, gp_halvings=2)
    other, _ = loss_fn.discriminator_loss(reals, torch.zeros(4, 1), None, resolution=8,
                                          alpha=1.0, gp_halvings=2)
    assert torch.equal(loss, again) and not torch.equal(loss, other)


def test_drift_term():
    reals, fakes = images(4).double(), images(5).double()  # float64: no cancellation error
    D = LinearD()
    args = (reals, torch.zeros(4, 1), None)
    kwargs = dict(resolution=8, alpha=1.0, gp_halvings=0)
    with_drift, _ = WGANGPLoss(FixedG(fakes), D, drift=0.25).discriminator_loss(*args, **kwargs)
    without, _ = WGANGPLoss(FixedG(fakes), D, drift=0.0).discriminator_loss(*args, **kwargs)
    torch.testing.assert_close(with_drift - without, 0.25 * D(reals).square().mean().detach())


def test_label_terms_when_conditional():
    reals, fakes = images(6).double(), images(7).double()
    labels = torch.tensor([0, 2, 1, 2])
    D = LabelD()
    kwargs = dict(resolution=8, alpha=1.0, gp_halvings=0)
    plain, _ = WGANGPLoss(FixedG(fakes, 3), D, cond_weight=0.0).discriminator_loss(
        reals, torch.zeros(4, 1), labels, **kwargs)
    loss, stats = WGANGPLoss(FixedG(fakes, 3), D, cond_weight=2.0).discriminator_loss(
        reals, torch.zeros(4, 1), labels, **kwargs)
    ce_real = F.cross_entropy(D(reals)[:, 1:], labels)
    ce_fake = F.cross_entropy(D(fakes)[:, 1:], labels)
    torch.testing.assert_close(loss - plain, (2.0 * (ce_real + ce_fake)).detach())
    assert stats["label_real"] == pytest.approx(ce_real.item(), rel=1e-6)
    assert stats["label_fake"] == pytest.approx(ce_fake.item(), rel=1e-6)

    g_loss, g_stats = WGANGPLoss(FixedG(fakes, 3), D, cond_weight=2.0).generator_loss(
        torch.zeros(4, 1), labels, resolution=8, alpha=1.0)
    torch.testing.assert_close(g_loss, (-D(fakes)[:, 0].mean() + 2.0 * ce_fake).detach())
    assert set(g_stats) == {"loss", "score_fake", "label_fake"}

    with pytest.raises(ValueError, match="labels are required"):
        WGANGPLoss(FixedG(fakes, 3), D).generator_loss(torch.zeros(4, 1), None, resolution=8,
                                                       alpha=1.0)
    with pytest.raises(ValueError, match="generator has 0 classes but discriminator has 3"):
        WGANGPLoss(FixedG(fakes), D)


def tiny_pair(num_classes=0):
    torch.manual_seed(0)
    return (Generator(16, latent_dim=8, num_classes=num_classes, **TINY),
            Discriminator(16, num_classes=num_classes, **TINY))


def test_discriminator_loss_on_the_networks_matches_explicit_autograd():
    G, D = tiny_pair()
    reals, z = torch.randn(4, 3, 8, 8), torch.randn(4, 8)
    loss_fn = WGANGPLoss(G, D)
    torch.manual_seed(3)
    loss, stats = loss_fn.discriminator_loss(reals, z, None, resolution=8, alpha=0.5,
                                             gp_halvings=1)
    loss.backward()
    assert all(p.grad is None for p in G.parameters())  # the fakes are detached
    used = [p for p in D.parameters() if p.grad is not None]  # blocks up to 8x8 only
    assert len(used) == len([p for name, p in D.named_parameters() if "16" not in name])
    d_grads = [p.grad.clone() for p in used]

    torch.manual_seed(3)
    u = torch.rand(4, 1, 1, 1)
    fakes = G(z, resolution=8, alpha=0.5).detach()
    mixed = (reals + u * (fakes - reals)).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(mixed, alpha=0.5).sum(), mixed, create_graph=True)
    norm = grad.flatten(1).norm(dim=1) / 2.0
    d_real, d_fake = D(reals, alpha=0.5), D(fakes, alpha=0.5)
    expected = (d_fake - d_real + 10.0 * (norm - 1.0).square()
                + 0.001 * d_real.square()).mean()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    assert stats["gradient_norm"] == pytest.approx(norm.mean().item(), rel=1e-5)
    D.zero_grad()
    expected.backward()
    for got, want in zip(d_grads, (p.grad for p in used)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_generator_loss_on_the_networks():
    G, D = tiny_pair()
    z = torch.randn(4, 8)
    loss, stats = WGANGPLoss(G, D).generator_loss(z, None, resolution=16, alpha=0.25)
    expected = -D(G(z, resolution=16, alpha=0.25), alpha=0.25).mean()
    torch.testing.assert_close(loss, expected)
    assert stats == pytest.approx({"loss": expected.item(), "score_fake": -expected.item()})
    loss.backward()
    assert all(p.grad is not None for p in G.blocks["16"].parameters())


def test_losses_under_bfloat16_autocast():
    G, D = tiny_pair(num_classes=2)
    loss_fn = WGANGPLoss(G, D)
    labels = torch.tensor([0, 1, 1, 0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d_loss, d_stats = loss_fn.discriminator_loss(torch.randn(4, 3, 16, 16), torch.randn(4, 8),
                                                     labels, resolution=16, alpha=0.5,
                                                     gp_halvings=0)
        g_loss, _ = loss_fn.generator_loss(torch.randn(4, 8), labels, resolution=16, alpha=0.5)
    assert d_loss.dtype == torch.float32 and g_loss.dtype == torch.float32
    d_loss.backward()
    assert all(math.isfinite(v) for v in d_stats.values())
    assert all(torch.isfinite(p.grad).all() for p in D.parameters() if p.grad is not None)
