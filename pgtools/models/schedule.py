"""The progressive-growing schedule: where training stands after a given number of kimg.

Phase p covers kimg [p(T+F), (p+1)(T+F)): T kimg stabilising resolution start·2^p, then F kimg
fading in start·2^(p+1); after the last fade-in the final resolution trains until the end. The
arithmetic is exact (fractions), so boundaries such as kimg = T fall where they should.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from numbers import Rational

# Minibatch per working resolution in the TF release's default preset, "preset-v2-1gpu" (one GPU,
# its fp32 caps: 4 at 512 and 1024). Not its 8-GPU preset ("preset-v2-8gpus": 512, 256, 128, 64,
# 32 from 4x4 to 64x64 and 32 above, with higher learning rates).
TF_1GPU_MINIBATCH: dict[int, int] = {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8,
                                   512: 4, 1024: 4}
# Minibatch per working resolution in the Theano release (one GPU; reduced for memory). Its
# minibatch stddev used the whole minibatch as one group: pair with mbstd_group_size=16, as the
# default group of 4 does not divide 14 or 6.
THEANO_MINIBATCH: dict[int, int] = {4: 16, 8: 16, 16: 16, 32: 16, 64: 16, 128: 16, 256: 14,
                                    512: 6, 1024: 3}


@dataclass(frozen=True)
class Phase:
    """The state of training at one point of the schedule."""

    kimg: float  # thousands of real images shown so far
    resolution: int  # working resolution: final / 2^floor(lod)
    alpha: float  # fade-in weight of the newest block, in [0, 1]; 1 when stable
    lod: float  # level of detail: log2(final / resolution being approached), >= 0
    phase_index: int  # p: 0 for the start resolution; log2(final/start) for the final hold
    transition: bool  # True while a resolution fades in (lod not an integer)
    minibatch: int  # minibatch size at the working resolution
    lr: float  # learning rate, with the per-resolution override and the ramp-up applied
    gp_halvings: int  # floor(lod), the gradient-penalty scaling exponent (see WGANGPLoss)

    @property
    def lod_key(self) -> tuple[int, int]:
        """(floor(lod), ceil(lod)); Adam's state is reset whenever this changes."""
        return math.floor(self.lod), math.ceil(self.lod)


def _exact(value: float | int | Fraction, what: str) -> Fraction:
    """A kimg value as an exact fraction; floats are read as their shortest decimal (0.1 → 1/10)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Rational)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if isinstance(value, Rational):
        return Fraction(value)
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return Fraction(repr(float(value)))


def _log2(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 4 or value & (value - 1):
        raise ValueError(f"{what} must be a power of two >= 4, got {value!r}")
    return value.bit_length() - 1


def _int_keys(table: dict, what: str) -> dict[int, object]:
    """A per-resolution dict with integer keys (JSON round trips turn them into strings)."""
    try:
        return {int(k): v for k, v in table.items()}
    except (TypeError, ValueError):
        keys = sorted(map(str, table))
        raise ValueError(f"{what} keys must be resolutions, got {keys}") from None


@dataclass
class Schedule:
    """Progressive-growing schedule in kimg (Karras et al. 2018; TF ``TrainingSchedule``)."""

    final_resolution: int  # the networks' resolution, a power of two >= 4
    start_resolution: int = 4  # first working resolution, a power of two in 4..final
    stabilize_kimg: float = 600  # T: kimg at each resolution before the next fades in
    transition_kimg: float = 600  # F: kimg of each fade-in
    total_kimg: float = 12000  # length of the run; the final resolution trains to the end
    minibatch: dict[int, int] = field(default_factory=lambda: dict(TF_1GPU_MINIBATCH))
    lr: float = 0.001  # base learning rate
    lr_per_resolution: dict[int, float] = field(default_factory=dict)  # e.g. {1024: 0.0015}
    lr_rampup_kimg: float = 0  # > 0: Theano ramp exp(-5 (1 - kimg/ramp)^2) over the first kimg

    def __post_init__(self) -> None:
        top = _log2(self.final_resolution, "final resolution")
        bottom = _log2(self.start_resolution, "start resolution")
        if bottom > top:
            raise ValueError(f"start resolution {self.start_resolution} is above the final "
                             f"resolution {self.final_resolution}")
        self._levels = top - bottom
        self._stabilize = _exact(self.stabilize_kimg, "stabilize_kimg")
        self._transition = _exact(self.transition_kimg, "transition_kimg")
        self._total = _exact(self.total_kimg, "total_kimg")
        for name, value in (("stabilize_kimg", self._stabilize),
                            ("transition_kimg", self._transition), ("total_kimg", self._total)):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self.minibatch = _int_keys(self.minibatch, "minibatch")
        self.lr_per_resolution = _int_keys(self.lr_per_resolution, "lr_per_resolution")
        for res in self.resolutions:
            size = self.minibatch.get(res)
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(f"minibatch needs a positive integer for resolution {res}, "
                                 f"got {size!r} (table: {self.minibatch})")
        for res, lr in self.lr_per_resolution.items():
            if res not in self.resolutions or not lr > 0:
                raise ValueError(f"lr_per_resolution {{{res}: {lr}}}: the resolution must be one "
                                 f"of {self.resolutions} and the rate positive")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not self.lr_rampup_kimg >= 0:
            raise ValueError(f"lr_rampup_kimg must be >= 0, got {self.lr_rampup_kimg}")

    @property
    def resolutions(self) -> list[int]:
        """Working resolutions from start to final."""
        return [self.start_resolution << i for i in range(self._levels + 1)]

    def _lr(self, kimg: float, resolution: int) -> float:
        lr = self.lr_per_resolution.get(resolution, self.lr)
        if self.lr_rampup_kimg > 0 and kimg < self.lr_rampup_kimg:
            lr *= math.exp(-5.0 * (1.0 - kimg / self.lr_rampup_kimg) ** 2)
        return lr

    def kimg_at_lod(self, lod: float) -> Fraction:
        """The first kimg at which the schedule reaches ``lod`` (a stable resolution's start, or
        the point of its fade-in)."""
        if not 0 <= lod <= self._levels:
            raise ValueError(f"lod {lod} is outside 0..{self._levels} for this schedule")
        upper = math.ceil(lod)
        start = (self._levels - upper) * (self._stabilize + self._transition)
        if lod == upper:
            return start
        return start + self._stabilize + (upper - Fraction(repr(float(lod)))) * self._transition

    def at(self, kimg: float) -> Phase:
        """The phase after ``kimg`` thousand real images.

        ``lod = log2(final) − log2(start) − p − max(kimg_in_phase − T, 0) / F``, floored at 0.
        At the first instant of a fade-in (kimg_in_phase = T) the lod is still an integer, so the
        phase reports the old resolution with alpha 1, which is the same model as the new one at
        alpha 0.
        """
        k = _exact(kimg, "kimg")
        if k < 0:
            raise ValueError(f"kimg must be >= 0, got {kimg}")
        period = self._stabilize + self._transition
        p = math.floor(k / period)
        in_phase = k - p * period
        lod = max(self._levels - p - max(in_phase - self._stabilize, 0) / self._transition,
                  Fraction(0))
        halvings = math.floor(lod)
        resolution = self.final_resolution >> halvings
        transition = lod != halvings
        return Phase(
            kimg=float(k),
            resolution=resolution,
            alpha=float(1 - (lod - halvings)) if transition else 1.0,
            lod=float(lod),
            phase_index=min(p, self._levels),
            transition=transition,
            minibatch=self.minibatch[resolution],
            lr=self._lr(float(k), resolution),
            gp_halvings=halvings,
        )

    def table(self) -> list[dict]:
        """Rows (resolution, kimg_start, kimg_end, minibatch, lr, phase) up to total_kimg.

        ``phase`` is "stabilize" or "fade-in"; a fade-in row's resolution is the one fading in.
        ``lr`` is the rate without the ramp-up.
        """
        period = self._stabilize + self._transition
        spans = []
        for p in range(self._levels):
            start = p * period
            spans.append((self.start_resolution << p, start, start + self._stabilize, "stabilize"))
            spans.append((self.start_resolution << (p + 1), start + self._stabilize,
                          start + period, "fade-in"))
        spans.append((self.final_resolution, self._levels * period, self._total, "stabilize"))
        return [
            {"resolution": res, "kimg_start": float(begin),
             "kimg_end": float(min(end, self._total)), "minibatch": self.minibatch[res],
             "lr": self.lr_per_resolution.get(res, self.lr), "phase": phase}
            for res, begin, end, phase in spans if begin < self._total
        ]
