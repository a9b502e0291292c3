"""What the EMA generator is judged by during training: image grids and metrics.

The grid's latents, the grid's reals and the metric sets are fixed by the run's seed, so fakes
grids of one run (and of a resumed run) are comparable image by image.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pgtools.models.api import to_uint8
from pgtools.models.config import TrainConfig
from pgtools.models.data import fade, to_float
from pgtools.models.schedule import Phase
from pgtools.models.step import GRID_DRAWS, METRIC_DRAWS, seeded_generator
from pgtools.pyramid import Pyramid

BATCH = 32  # images generated or read at a time
METRIC_MIN_SIZE = 16  # SWD needs 16x16 or more: smaller working resolutions are upscaled to this


def grid_shape(resolution: int) -> tuple[int, int]:
    """(columns, rows) of the snapshot grids: about 1920x1080 pixels, 3x2 up to 16x9 images."""
    return int(np.clip(1920 // resolution, 3, 16)), int(np.clip(1080 // resolution, 2, 9))


def _fixed_indices(count: int, num_images: int, seed: int, purpose: int) -> np.ndarray:
    """``count`` distinct image indices (repeating only if the dataset is smaller), seeded."""
    order = np.random.default_rng([seed, purpose, 0]).permutation(num_images)
    return np.resize(order, count)


def _fixed_latents(count: int, dim: int, seed: int, purpose: int) -> Tensor:
    return torch.randn(count, dim, generator=seeded_generator(seed, purpose, 1))


def _upscale(images: Tensor, size: int) -> Tensor:
    """Nearest-neighbour upscaling of float images to ``size`` (unchanged if already that big)."""
    if images.shape[-1] >= size:
        return images
    return F.interpolate(images, scale_factor=size // images.shape[-1], mode="nearest")


class Judge:
    """Fixed latents and reals for the run's image grids and metric evaluations."""

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        self.config, self.device = config, device
        self.columns, rows = grid_shape(config.resolution)
        count = self.columns * rows
        with Pyramid(config.dataset) as pyramid:
            indices = _fixed_indices(count, pyramid.num_images, config.seed, GRID_DRAWS)
            self.grid_reals = pyramid.read_indices(config.resolution, indices)
            labels = pyramid.labels if config.num_classes else None
        self.grid_labels = None if labels is None else torch.from_numpy(labels[indices]).float()
        self.grid_latents = _fixed_latents(count, config.latent_dim, config.seed, GRID_DRAWS)

    @torch.no_grad()
    def _generate(self, G_ema: nn.Module, latents: Tensor, labels: Tensor | None, phase: Phase, size: int
                  ) -> Iterator[np.ndarray]:
        for start in range(0, len(latents), BATCH):
            z = latents[start:start + BATCH].to(self.device)
            part = None if labels is None else labels[start:start + BATCH].to(self.device)
            images = G_ema(z, part, resolution=phase.resolution, alpha=phase.alpha).float()
            yield to_uint8(_upscale(images, size))

    def fakes_grid(self, G_ema: nn.Module, phase: Phase) -> np.ndarray:
        """uint8 (N, C, R, R) grid images from the fixed latents, upscaled to the final resolution."""
        return np.concatenate(list(self._generate(G_ema, self.grid_latents, self.grid_labels, phase,
                                                  self.config.resolution)))

    def metrics(self, G_ema: nn.Module, phase: Phase) -> dict:
        """The configured metrics between a fixed set of reals at the working resolution (faded
        like the training reals, mirrored at random when the run mirrors) and as many fakes from
        fixed latents; below 16x16 both sets are upscaled to 16x16."""
        from pgtools.models.metrics import compute_metrics
        from pgtools.models.metrics.sets import flips

        config, count = self.config, self.config.metrics_images
        size = max(phase.resolution, METRIC_MIN_SIZE)
        with Pyramid(config.dataset) as pyramid:
            indices = _fixed_indices(count, pyramid.num_images, config.seed, METRIC_DRAWS)
            mirrored = flips(count, config.seed) if config.mirror else np.zeros(count, bool)
            labels = pyramid.labels
            latents = _fixed_latents(count, config.latent_dim, config.seed, METRIC_DRAWS)
            fake_labels = torch.from_numpy(labels[indices]).float() if config.num_classes else None
            return compute_metrics(
                config.metrics,
                lambda: self._reals(pyramid, indices, mirrored, phase, size),
                lambda: self._generate(G_ema, latents, fake_labels, phase, size),
                num_images=count,
                seed=config.seed,
            )

    def _reals(self, pyramid: Pyramid, indices: np.ndarray, mirrored: np.ndarray, phase: Phase, size: int
               ) -> Iterator[np.ndarray]:
        for start in range(0, len(indices), BATCH):
            images = pyramid.read_indices(phase.resolution, indices[start:start + BATCH])
            flip = mirrored[start:start + BATCH]
            images[flip] = images[flip, ..., ::-1]
            yield to_uint8(_upscale(fade(to_float(torch.from_numpy(images)), phase.alpha), size))
