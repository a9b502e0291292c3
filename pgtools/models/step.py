"""One training step of the Progressive GAN: a D step, a G step, then the generator EMA.

Every random draw of step ``t`` (latents, gradient-penalty weights, the G step's labels) is made
for the whole global minibatch from a generator seeded by (seed, purpose, t) and then sharded, so
the global minibatch does not depend on the number of ranks and a resumed run draws exactly what
an uninterrupted one would. The reals of D step ``t`` are the feed's minibatch ``t``.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from pgtools.models.config import TrainConfig
from pgtools.models.data import RealImageFeed
from pgtools.models.distributed import World
from pgtools.models.loss import WGANGPLoss
from pgtools.models.precision import amp_dtype
from pgtools.models.schedule import Phase

# Purposes of the seeded generators (the feed uses 1-4 for its own draws).
D_DRAWS, G_DRAWS, GRID_DRAWS, METRIC_DRAWS = 101, 102, 103, 104


def seeded_generator(seed: int, purpose: int, *keys: int) -> torch.Generator:
    """A CPU torch generator that is a pure function of (seed, purpose, keys)."""
    words = np.random.SeedSequence([seed, purpose, *keys]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(words[0]) << 32 | int(words[1]))


@dataclass
class StepInputs:
    """This rank's share of one step's inputs."""

    reals: Tensor  # D step: real images (n, C, r, r), already faded by alpha
    real_labels: Tensor | None  # their one-hot labels (conditional runs)
    d_latents: Tensor  # D step: latents of the fakes (n, latent_dim)
    penalty_weights: Tensor  # D step: u of x̂ = real + u (fake - real), (n,)
    g_latents: Tensor  # G step: latents (n, latent_dim)
    g_labels: Tensor | None  # G step: labels drawn from the training set (conditional runs)


def draw_inputs(feed: RealImageFeed, phase: Phase, step: int, *, config: TrainConfig, world: World,
                channels_last: bool = False) -> StepInputs:
    """Inputs of training step ``step`` for this rank (the global minibatch is ``phase.minibatch``)."""
    size, device = phase.minibatch, world.device
    reals, real_labels = feed.batch(step, phase.resolution, phase.alpha, size)
    if channels_last:
        reals = reals.contiguous(memory_format=torch.channels_last)
    d_gen = seeded_generator(config.seed, D_DRAWS, step)
    d_latents = torch.randn(size, config.latent_dim, generator=d_gen)
    weights = torch.rand(size, generator=d_gen)
    g_gen = seeded_generator(config.seed, G_DRAWS, step)
    g_latents = torch.randn(size, config.latent_dim, generator=g_gen)
    g_labels = None
    if config.num_classes:
        picks = torch.randint(feed.num_images, (size,), generator=g_gen)
        g_labels = world.shard(feed.labels[picks]).to(device)
    return StepInputs(reals, real_labels if config.num_classes else None,
                      world.shard(d_latents).to(device), world.shard(weights).to(device),
                      world.shard(g_latents).to(device), g_labels)


def ema_beta(config: TrainConfig, minibatch: int, nimg: int) -> float:
    """β of the G_ema update after a step of ``minibatch`` images that started at ``nimg`` images.

    The paper's fixed ``ema_beta`` per step, or with ``ema_kimg`` a half-life in images
    (StyleGAN2-ADA's ``ema_kimg``): β = 0.5 ** (minibatch / (ema_kimg · 1000)), the half-life
    limited to ``ema_rampup`` × nimg when ``ema_rampup`` is set, so that G_ema of a short run
    forgets the initial weights.
    """
    if config.ema_kimg is None:
        return config.ema_beta
    ema_nimg = config.ema_kimg * 1000
    if config.ema_rampup is not None:
        ema_nimg = min(ema_nimg, nimg * config.ema_rampup)
    return 0.5 ** (minibatch / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(ema: nn.Module, net: nn.Module, beta: float) -> None:
    """``θ_ema ← β θ_ema + (1 − β) θ`` for parameters (one foreach pass); buffers are copied."""
    torch._foreach_lerp_(list(ema.parameters()), list(net.parameters()), 1.0 - beta)
    for averaged, current in zip(ema.buffers(), net.buffers()):
        averaged.copy_(current)


class Trainer:
    """Optimizers and the per-step updates of G, D and G_ema.

    Adam's state (moments and step counts) is created afresh whenever the phase's ``lod_key``
    changes, as in the TF release. A step whose averaged gradients are not all finite is skipped;
    :attr:`bad_steps` counts consecutive steps with a non-finite loss on any rank.
    """

    def __init__(self, G: nn.Module, D: nn.Module, G_ema: nn.Module, *, config: TrainConfig, world: World) -> None:
        self.G, self.D, self.G_ema = G, D, G_ema
        self.config, self.world = config, world
        self.loss = WGANGPLoss(G, D, gp_lambda=config.gp_lambda, drift=config.drift)
        # --amp autocasts the G step only: D's loss and gradient penalty (whose inner gradient is
        # not loss-scaled and whose norm bfloat16's 8-bit mantissa would blur) stay in float32.
        self.dtype = amp_dtype(world.device, config.amp)
        scaled = self.dtype == torch.float16
        self.scalers = {"G": torch.amp.GradScaler(world.device.type, enabled=scaled),
                        "D": torch.amp.GradScaler(world.device.type, enabled=False)}
        self.optimizers: dict[str, torch.optim.Adam] = {}
        self.lod_key: tuple[int, int] | None = None
        self.bad_steps = 0
        self.skipped_steps = 0  # optimizer steps skipped for non-finite gradients, in all

    def _new_optimizers(self, lod_key: tuple[int, int]) -> None:
        betas, eps, lr = tuple(self.config.betas), self.config.eps, self.config.lr
        # fused: one kernel for all parameters (deterministic; its rounding differs from the
        # per-tensor Adam's in the last bits, ~5e-7 after 20 steps)
        self.optimizers = {name: torch.optim.Adam(net.parameters(), lr=lr, betas=betas, eps=eps, fused=True)
                           for name, net in (("G", self.G), ("D", self.D))}
        self.lod_key = lod_key

    def prepare(self, phase: Phase) -> None:
        """Fresh optimizers when the level of detail changed; the phase's learning rate."""
        if phase.lod_key != self.lod_key:
            self._new_optimizers(phase.lod_key)
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = phase.lr

    def _autocast(self) -> contextlib.AbstractContextManager:
        """The G step's autocast under --amp (nothing without it)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.world.device.type, dtype=self.dtype)

    def _apply(self, name: str, net: nn.Module, loss: Tensor, loss_value: float) -> bool:
        """Backward, average gradients over ranks, step unless non-finite; True if every rank's
        loss was finite."""
        optimizer, scaler = self.optimizers[name], self.scalers[name]
        scaler.scale(loss).backward()
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        flag = torch.tensor([0.0 if math.isfinite(loss_value) else 1.0], device=self.world.device)
        self.world.mean_(grads + [flag])
        if scaler.is_enabled():
            scaler.unscale_(optimizer)
        finite = bool(torch.stack(torch._foreach_norm(grads, math.inf)).isfinite().all()) if grads else True
        if finite:
            optimizer.step()
        else:
            self.skipped_steps += 1
        if scaler.is_enabled():
            scaler.update()
        optimizer.zero_grad(set_to_none=True)
        return math.isfinite(loss_value) if self.world.world_size == 1 else float(flag) == 0.0

    def step(self, phase: Phase, inputs: StepInputs, *, nimg: int) -> dict[str, float]:
        """One D step (float32) and one G step (autocast under --amp) at ``phase``, then the EMA
        update; ``nimg``: images shown before this step. Returns the statistics."""
        self.prepare(phase)
        d_loss, d_stats = self.loss.discriminator_loss(
            inputs.reals, inputs.d_latents, inputs.real_labels, resolution=phase.resolution,
            alpha=phase.alpha, gp_halvings=phase.gp_halvings, u=inputs.penalty_weights)
        d_ok = self._apply("D", self.D, d_loss, d_stats["loss"])
        self.D.requires_grad_(False)
        try:
            with self._autocast():
                g_loss, g_stats = self.loss.generator_loss(inputs.g_latents, inputs.g_labels,
                                                           resolution=phase.resolution, alpha=phase.alpha)
            g_ok = self._apply("G", self.G, g_loss, g_stats["loss"])
        finally:
            self.D.requires_grad_(True)
        update_ema(self.G_ema, self.G, ema_beta(self.config, phase.minibatch, nimg))
        self.bad_steps = 0 if d_ok and g_ok else self.bad_steps + 1
        return {**{f"D/{k}": v for k, v in d_stats.items()}, **{f"G/{k}": v for k, v in g_stats.items()}}

    def weights_finite(self) -> bool:
        """True when every parameter of G, D and G_ema is finite."""
        params = [p for net in (self.G, self.D, self.G_ema) for p in net.parameters()]
        return bool(torch.stack([p.detach().abs().amax() for p in params]).isfinite().all())

    def state_dict(self) -> dict:
        """Optimizer and loss-scaler state, the level of detail they belong to, and the counters."""
        return {"optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
                "scalers": {name: scaler.state_dict() for name, scaler in self.scalers.items()},
                "lod_key": list(self.lod_key) if self.lod_key else None,
                "bad_steps": self.bad_steps, "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` saved (the networks are restored separately)."""
        if state["lod_key"] is not None:
            self._new_optimizers(tuple(state["lod_key"]))
            for name, optimizer in self.optimizers.items():
                optimizer.load_state_dict(state["optimizers"][name])
        for name, scaler in self.scalers.items():
            if state["scalers"].get(name):
                scaler.load_state_dict(state["scalers"][name])
        self.bad_steps, self.skipped_steps = state["bad_steps"], state["skipped_steps"]
