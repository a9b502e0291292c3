"""The Progressive GAN loss: WGAN-GP with drift term, plus AC-GAN label terms when conditional."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class WGANGPLoss:
    """WGAN-GP losses for one generator/discriminator pair (TF release ``D_wgangp_acgan``).

    Both methods return the scalar loss, averaged over the minibatch, for the caller to call
    ``backward`` on, and a dict of detached float statistics (one device sync for all of them).
    """

    def __init__(
        self,
        G: nn.Module,  # Generator: G(z, labels, *, resolution, alpha) -> images
        D: nn.Module,  # Discriminator: D(images, *, alpha) -> (N,) or (N, 1 + classes)
        *,
        gp_lambda: float = 10.0,  # weight of the gradient penalty
        drift: float = 0.001,  # weight of the drift term D(real)^2
        cond_weight: float = 1.0,  # weight of the AC-GAN label cross-entropies
    ) -> None:
        if getattr(G, "num_classes", 0) != getattr(D, "num_classes", 0):
            raise ValueError(f"generator has {getattr(G, 'num_classes', 0)} classes but "
                             f"discriminator has {getattr(D, 'num_classes', 0)}")
        self.G = G
        self.D = D
        self.gp_lambda = gp_lambda
        self.drift = drift
        self.cond_weight = cond_weight
        self.num_classes = getattr(D, "num_classes", 0)

    def _scores(self, images: Tensor, alpha: float) -> tuple[Tensor, Tensor | None]:
        """D's scores (N,) and label logits (N, classes) or None, at least float32."""
        out = _at_least_float32(self.D(images, alpha=alpha))
        if self.num_classes == 0:
            return out, None
        return out[:, 0], out[:, 1:]

    def _label_term(self, logits: Tensor | None, labels: Tensor | None) -> Tensor | None:
        """Per-sample cross-entropy of label logits against class indices or one-hot labels."""
        if logits is None:
            return None
        if labels is None:
            raise ValueError(f"the networks are conditional ({self.num_classes} classes); "
                             "labels are required")
        target = labels.float() if labels.is_floating_point() else labels.long()
        return F.cross_entropy(logits, target, reduction="none")

    def discriminator_loss(
        self,
        reals: Tensor,  # real images (N, C, r, r) at the working resolution, already faded
        z: Tensor,  # latents (N, latent_dim) for the fakes
        labels: Tensor | None,  # the reals' labels, also given to G; None when unconditional
        *,
        resolution: int,  # working resolution r
        alpha: float,  # fade-in weight of the newest block
        gp_halvings: int,  # floor(lod) = log2(final_resolution / r), see below
        u: Tensor | None = None,  # per-sample weights (N,) in [0, 1); None: torch.rand
    ) -> tuple[Tensor, dict[str, float]]:
        """``L_D = D(fake) − D(real) + λ (‖∇D(x̂)‖ / 2^gp_halvings − 1)² + ε D(real)²``.

        x̂ = real + u (fake − real) with u ~ U[0, 1) per sample, drawn from torch's RNG on the
        reals' device unless given (a trainer passes its own seeded draws so that results do not
        depend on the number of ranks); the fakes are generated without gradient. The
        conditional variant adds ``cond_weight`` × (cross-entropy on reals + on fakes), both
        against ``labels``.

        ``gp_halvings`` makes the penalty the one the original takes at full resolution. The
        original feeds D nearest-upscaled full-size images, so a gradient per working pixel is
        shared by 4^k full-resolution pixels (k = floor(lod), the number of halvings from the
        network's final resolution to the working one) and ‖g_full‖ = ‖g_work‖ / 2^k. Penalising
        (‖g_work‖ / 2^k − 1)² is the TF penalty with target 2^k and weight λ / 4^k. Pass 0 for
        a network trained at its own resolution only.

        Statistics: loss, score_real, score_fake, gradient_penalty (the unweighted squared
        term), gradient_norm (‖g_work‖ / 2^k, the full-resolution norm), and label_real,
        label_fake when conditional; all minibatch means.
        """
        with torch.no_grad():
            fakes = self.G(z, labels, resolution=resolution, alpha=alpha)
        fakes = fakes.to(reals.dtype)
        real_scores, real_logits = self._scores(reals, alpha)
        fake_scores, fake_logits = self._scores(fakes, alpha)

        if u is None:
            u = torch.rand(reals.shape[0], device=reals.device, dtype=reals.dtype)
        u = u.to(device=reals.device, dtype=reals.dtype).reshape(-1, 1, 1, 1)
        mixed = (reals.detach() + u * (fakes - reals.detach())).requires_grad_(True)
        mixed_scores, _ = self._scores(mixed, alpha)
        (grad,) = torch.autograd.grad(mixed_scores.sum(), mixed, create_graph=True)
        norm = _at_least_float32(grad).square().sum(dim=(1, 2, 3)).sqrt() / 2.0**gp_halvings
        penalty = (norm - 1.0).square()

        per_sample = (fake_scores - real_scores + self.gp_lambda * penalty
                      + self.drift * real_scores.square())
        stats = {"score_real": real_scores, "score_fake": fake_scores,
                 "gradient_penalty": penalty, "gradient_norm": norm}
        label_real = self._label_term(real_logits, labels)
        label_fake = self._label_term(fake_logits, labels)
        if label_real is not None and label_fake is not None:
            per_sample = per_sample + self.cond_weight * (label_real + label_fake)
            stats.update(label_real=label_real, label_fake=label_fake)
        loss = per_sample.mean()
        return loss, _float_stats(loss, stats)

    def generator_loss(
        self,
        z: Tensor,  # latents (N, latent_dim)
        labels: Tensor | None,  # labels for G (and the label term); None when unconditional
        *,
        resolution: int,  # working resolution
        alpha: float,  # fade-in weight of the newest block
    ) -> tuple[Tensor, dict[str, float]]:
        """``L_G = −D(G(z))`` (+ ``cond_weight`` × cross-entropy of D's label logits on fakes).

        Statistics: loss, score_fake, and label_fake when conditional; minibatch means.
        """
        fakes = self.G(z, labels, resolution=resolution, alpha=alpha)
        fake_scores, fake_logits = self._scores(fakes, alpha)
        per_sample = -fake_scores
        stats = {"score_fake": fake_scores}
        label_fake = self._label_term(fake_logits, labels)
        if label_fake is not None:
            per_sample = per_sample + self.cond_weight * label_fake
            stats["label_fake"] = label_fake
        loss = per_sample.mean()
        return loss, _float_stats(loss, stats)


def _at_least_float32(x: Tensor) -> Tensor:
    """``x`` in float32, or float64 when it is float64 (bfloat16/float16 under autocast go up)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _float_stats(loss: Tensor, per_sample: dict[str, Tensor]) -> dict[str, float]:
    """The loss and the minibatch mean of each per-sample statistic, as Python floats."""
    names = ["loss", *per_sample]
    values = torch.stack([loss.detach().float(), *(v.detach().float().mean()
                                                   for v in per_sample.values())])
    return dict(zip(names, values.tolist()))
