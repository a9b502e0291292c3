"""Using a trained model from Python, in the spirit of pytorch_GAN_zoo's ``hubconf.py``.

    from pgtools.models import load
    model = load("training-runs/00000-celebahq-1024")   # a run directory or a .pt checkpoint
    z = model.build_noise(16, seed=0)
    images = model.generate(z)                           # float (16, 3, r, r), about [-1, 1]

``load`` also reads published networks (see :mod:`pgtools.models.published`): NVIDIA's TF release
pickles (``karras2018iclr-*.pkl``) and pytorch_GAN_zoo checkpoints (the torch.hub ``PGAN``).

``buildNoiseData`` and ``test`` behave like pytorch_GAN_zoo's: ``buildNoiseData(n)`` returns
``(latents, labels)`` where, for a conditional model, the latents carry random one-hot labels
appended (and ``labels`` are the class indices; None when unconditional), and
``test(latents, toCPU=True)`` generates from such latents.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pgtools.errors import PgtoolsError
from pgtools.models.checkpoint import load_checkpoint
from pgtools.models.distributed import select_device
from pgtools.models.networks import Generator
from pgtools.models.precision import set_tf32


def to_uint8(images: Tensor) -> np.ndarray:
    """Float images (N, C, H, W), [-1, 1] the data range, to uint8: clip(round-half-even(y * 127.5 + 127.5))."""
    scaled = images.detach().float().mul(127.5).add(127.5).round().clamp(0, 255)
    return scaled.to(torch.uint8).cpu().numpy()


class Model:
    """The EMA generator of a checkpoint, in eval mode, at the checkpoint's working resolution."""

    def __init__(self, generator: torch.nn.Module, *, resolution: int, alpha: float, kimg: float | None,
                 device: torch.device, config: dict, output_resolution: int | None = None) -> None:
        self.generator = generator.eval().requires_grad_(False)
        self.resolution = resolution  # working resolution the checkpoint was trained to
        self.alpha = alpha  # its fade-in weight (1 unless saved during a fade-in)
        self.kimg = kimg  # thousands of real images the model was trained on (None: unknown)
        self.device = device
        self.config = config  # the run's training configuration (a published file: its own settings)
        self.output_resolution = output_resolution or resolution  # images are upscaled (nearest) to this
        self.latent_dim = generator.latent_dim
        self.num_classes = generator.num_classes
        self.channels = generator.channels

    def build_noise(self, n: int, *, seed: int | None = None) -> Tensor:
        """``n`` latents N(0, 1) on the model's device; with ``seed`` always the same ones."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        return torch.randn(n, self.latent_dim, generator=generator).to(self.device)

    def random_labels(self, n: int, *, seed: int | None = None) -> Tensor | None:
        """``n`` uniformly random class indices (None for an unconditional model)."""
        if not self.num_classes:
            return None
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        return torch.randint(self.num_classes, (n,), generator=generator).to(self.device)

    @torch.no_grad()
    def generate(self, z: Tensor, labels: Tensor | None = None, *, batch_size: int = 64) -> Tensor:
        """Images (N, C, r, r) from latents (N, latent_dim): the network's output, unclamped.

        [-1, 1] is the data range; like the original codes, values slightly outside are kept
        (:func:`to_uint8` clips). ``r`` is :attr:`output_resolution`: a network saved during
        training at a lower working resolution is upscaled (nearest) where its original code did
        so (NVIDIA's pickles always give full-size images). ``labels``: class indices or one-hot
        rows, required by a conditional model.
        """
        if self.num_classes and labels is None:
            raise PgtoolsError(f"this model is conditional ({self.num_classes} classes): pass labels, "
                               "e.g. model.random_labels(n)")
        out = []
        for start in range(0, len(z), batch_size):
            part = None if labels is None else labels[start:start + batch_size].to(self.device)
            images = self.generator(z[start:start + batch_size].to(self.device), part,
                                    resolution=self.resolution, alpha=self.alpha)
            factor = self.output_resolution // images.shape[-1]
            out.append(F.interpolate(images.float(), scale_factor=factor, mode="nearest") if factor > 1
                       else images.float())
        size = self.output_resolution
        return torch.cat(out) if out else torch.empty(0, self.channels, size, size)

    def buildNoiseData(self, n_samples: int) -> tuple[Tensor, Tensor | None]:  # noqa: N802 (zoo name)
        """pytorch_GAN_zoo's name: ``(latents, labels)``; see the module docstring."""
        z = self.build_noise(n_samples)
        labels = self.random_labels(n_samples)
        if labels is None:
            return z, None
        onehot = F.one_hot(labels, self.num_classes).to(z.dtype)
        return torch.cat([z, onehot], dim=1), labels

    def test(self, input: Tensor, getAvG: bool = True, toCPU: bool = True) -> Tensor:  # noqa: A002, N802, N803
        """pytorch_GAN_zoo's name: images from latents built by :meth:`buildNoiseData`.

        ``getAvG`` is accepted for compatibility; this model only holds the averaged generator.
        """
        z, labels = input, None
        if self.num_classes:
            z, labels = input[:, :self.latent_dim], input[:, self.latent_dim:]
        images = self.generate(z, labels)
        return images.cpu() if toCPU else images


def load(path: str | os.PathLike, *, device: str = "auto", network: str = "Gs") -> Model:
    """Load the EMA generator of a checkpoint file or run directory (its ``latest.pt``).

    Switches TF32 off for this process, so that CUDA samples are computed in float32 as in training.

    Args:
        path: a ``.pt`` checkpoint, a run directory, an NVIDIA ``.pkl`` or a pytorch_GAN_zoo ``.pth``.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        network: for published files, ``Gs`` (the averaged generator) or ``G`` (the raw one).
    """
    from pgtools.models.published import read_published

    selected = select_device(device)
    set_tf32(False)
    published = read_published(path)
    if published is not None:
        return Model(published.generator(network).to(selected), resolution=published.resolution,
                     alpha=published.alpha, kimg=None, device=selected, config=published.settings,
                     output_resolution=published.output_resolution)
    state = load_checkpoint(path)
    generator = Generator(**state["networks"]["G"])
    generator.load_state_dict(state["G_ema"])
    position = state["position"]
    return Model(generator.to(selected), resolution=position["resolution"], alpha=position["alpha"],
                 kimg=position["kimg"], device=selected, config=state["config"])
