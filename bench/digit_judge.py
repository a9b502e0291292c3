"""A second judge of generated digits, independent of SWD: a small CNN classifier.

Trained on labelled real digits (held-out accuracy reported), it scores a set of images by
  - an inception-style score exp(E_x KL(p(y|x) || p(y))): high when each image is clearly one
    digit and the set covers all ten (10 at best);
  - the share of confident images, max_y p(y|x) > 0.9: how many look like some digit at all.
Real digits give the ceiling of both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

CONFIDENT = 0.9


def _classifier(classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
        nn.Flatten(), nn.Linear(64 * 16, 128), nn.ReLU(), nn.Linear(128, classes))


def _to_float(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).float().div(127.5).sub(1.0)


@dataclass(frozen=True)
class Score:
    """The judge's verdict on one image set."""

    inception_score: float  # exp(E KL(p(y|x) || p(y))), 1 ... number of classes
    confident: float  # share of images with max p(y|x) > CONFIDENT
    class_shares: list[float]  # share of images given each class (argmax)


class DigitJudge:
    """A CNN trained on uint8 (N, 1, r, r) digits and their integer labels."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, classes: int = 10, epochs: int = 8,
                 seed: int = 0) -> None:
        self.classes = classes
        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = _classifier(classes)
        optimizer = torch.optim.Adam(self.net.parameters(), lr=2e-3)
        x, y = _to_float(images), torch.from_numpy(labels.astype(np.int64))
        self.net.train()
        for _ in range(epochs):
            for batch in torch.randperm(len(x), generator=generator).split(64):
                loss = nn.functional.cross_entropy(self.net(x[batch]), y[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        self.net.eval().requires_grad_(False)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """p(y|x) as float64 (N, classes) for uint8 (N, 1, r, r) images."""
        with torch.no_grad():
            parts = [self.net(_to_float(images[i:i + 512])).softmax(1) for i in range(0, len(images), 512)]
        return torch.cat(parts).double().numpy()

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        """Share of ``images`` classified as their ``labels``."""
        return float(np.mean(self.probabilities(images).argmax(1) == labels))

    def score(self, images: np.ndarray) -> Score:
        """The inception-style score, confident share and class shares of a set of images."""
        p = self.probabilities(images)
        marginal = p.mean(0)
        kl = np.sum(p * (np.log(np.clip(p, 1e-12, None)) - np.log(np.clip(marginal, 1e-12, None))), axis=1)
        shares = np.bincount(p.argmax(1), minlength=self.classes) / len(p)
        return Score(inception_score=float(np.exp(kl.mean())), confident=float(np.mean(p.max(1) > CONFIDENT)),
                     class_shares=[round(float(s), 4) for s in shares])
