"""The PGGAN paper's metrics behind a small registry: ``swd`` and ``ms-ssim``.

The metrics themselves live in ``swd.sliced_wasserstein`` and ``ms_ssim.ms_ssim``.

Each metric gathers one accumulator per image set (reals, fakes) from the same stream of batches,
so ``compute_metrics`` reads each set once, whatever metrics are asked for, unless SWD's
descriptors would not fit its memory budget: then the sets are read again for each group of
pyramid levels (sets given as sources, functions returning fresh iterators).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pgtools.errors import PgtoolsError
from pgtools.models.metrics.batches import take_images
from pgtools.models.metrics.ms_ssim import PairedMSSSIM
from pgtools.models.metrics.swd import DescriptorSet, SWDResult, format_swd, level_distances, level_groups

__all__ = ["METRICS", "SWD_MEMORY", "Metric", "compute_metrics", "count_passes", "format_metrics"]

SWD_MEMORY = 3 << 30  # bytes of SWD descriptors (both sets) held at once: 3 GiB

Batches = Iterable[np.ndarray] | Callable[[], Iterable[np.ndarray]]  # batches, or a source of them


@dataclass(frozen=True)
class Metric:
    """How one metric plans its passes, gathers a set, compares the two sets, and prints its result."""

    accumulator: Callable[[int, str, Any], Any]  # (seed, set name, part) -> object with .add(batch)
    parts: Callable[[int, int, int], list]  # (resolution, images, memory) -> one part per pass
    compare: Callable[[Any, Any, int], Any]  # (reals acc., fakes acc., seed) -> one part's result
    combine: Callable[[list], dict]  # the parts' results -> JSON-able dict
    format: Callable[[dict], str]  # that dict -> one human line
    even_count: bool = False  # needs an even number of images (pairs)


def _swd_compare(reals: DescriptorSet, fakes: DescriptorSet, seed: int) -> tuple[list[int], list[float], int]:
    return reals.resolutions, level_distances(reals, fakes, seed=seed), reals.count


def _swd_combine(parts: list[tuple[list[int], list[float], int]]) -> dict:
    resolutions = [size for part in parts for size in part[0]]
    levels = [distance for part in parts for distance in part[1]]
    return asdict(SWDResult(resolutions, levels, float(np.mean(levels)), parts[0][2]))


def _swd_format(result: dict) -> str:
    sizes = ", ".join(str(r) for r in result["resolutions"])
    return f"SWD x1e3 ({sizes} / average): {format_swd(SWDResult(**result))}"


def _ms_ssim_compare(reals: PairedMSSSIM, fakes: PairedMSSSIM, seed: int) -> dict:
    return {"fakes": fakes.value(), "reals": reals.value(), "pairs": fakes.pairs}


def _ms_ssim_format(result: dict) -> str:
    return f"MS-SSIM: {result['fakes']:.4f} (reals {result['reals']:.4f}, {result['pairs']} pairs)"


METRICS: dict[str, Metric] = {
    "swd": Metric(
        accumulator=lambda seed, name, levels: DescriptorSet(seed=seed, levels=levels, name=name),
        parts=lambda resolution, count, memory: level_groups(resolution, count, memory=memory),
        compare=_swd_compare,
        combine=_swd_combine,
        format=_swd_format,
    ),
    "ms-ssim": Metric(
        accumulator=lambda seed, name, part: PairedMSSSIM(name),
        parts=lambda resolution, count, memory: [None],
        compare=_ms_ssim_compare,
        combine=lambda parts: parts[0],
        format=_ms_ssim_format,
        even_count=True,
    ),
}


def count_passes(names: list[str], resolution: int, num_images: int, memory: int = SWD_MEMORY) -> int:
    """Passes over each set that ``compute_metrics`` makes for these metrics, given sources
    (unknown names count for nothing: ``compute_metrics`` refuses them)."""
    known = [name for name in names if name in METRICS]
    return max((len(METRICS[name].parts(resolution, num_images, memory)) for name in known), default=1)


def compute_metrics(
    names: list[str],  # metric names from METRICS, e.g. ["swd", "ms-ssim"]
    reals: Batches,  # uint8 (n, C, H, W) batches yielding >= num_images images, or a source of them
    fakes: Batches,  # the same for generated images
    *,
    num_images: int,  # images taken from each set (the first num_images)
    seed: int = 0,  # seeds the random parts (SWD patches and directions)
    progress: Callable[[int], None] | None = None,  # called with the images just processed
    memory: int = SWD_MEMORY,  # bytes of SWD descriptors to hold at once (with sources)
) -> dict:
    """Compute the named metrics between reals and fakes, in one pass over each set or, when both
    are sources (functions returning fresh iterables) and SWD's descriptors exceed ``memory``, in
    one pass per group of pyramid levels (:func:`count_passes`); the results are the same.

    Returns ``{name: result}`` with JSON-serialisable results: ``swd`` gives ``resolutions``,
    ``levels`` (x 1e3, finest first), ``average`` and ``num_images``; ``ms-ssim`` gives the fakes'
    value, the reals' value (the baseline) and the number of pairs.
    """
    names = list(dict.fromkeys(names))  # each metric once, in the order given
    available = ", ".join(sorted(METRICS))
    if not names:
        raise PgtoolsError(f"no metric given; available: {available}")
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise PgtoolsError(f"unknown metric {', '.join(map(repr, unknown))}; available: {available}")
    if num_images < 1:
        raise PgtoolsError(f"num_images must be at least 1; got {num_images}")
    for name in names:
        if METRICS[name].even_count and num_images % 2:
            raise PgtoolsError(
                f"{name} pairs consecutive images and needs an even num_images; got {num_images}"
            )
    sources = {"reals": reals, "fakes": fakes}
    reusable = all(callable(images) for images in sources.values())

    def batches(set_name: str) -> Iterable[np.ndarray]:
        images = sources[set_name]
        return take_images(images() if callable(images) else images, num_images, set_name)

    first_reals = iter(batches("reals"))
    first = next(first_reals)  # the size of the images decides the passes
    plan = {name: METRICS[name].parts(first.shape[-1], num_images, memory if reusable else sys.maxsize)
            for name in names}
    results: dict[str, list] = {name: [] for name in names}
    for number in range(max(map(len, plan.values()))):
        parts = {name: plan[name][number] for name in names if number < len(plan[name])}
        streams = {"reals": itertools.chain([first], first_reals) if number == 0 else batches("reals"),
                   "fakes": batches("fakes")}
        for name, result in _one_pass(parts, streams, seed, progress).items():
            results[name].append(result)
    return {name: METRICS[name].combine(results[name]) for name in names}


def _one_pass(parts: dict[str, Any], streams: dict[str, Iterable[np.ndarray]], seed: int,
              progress: Callable[[int], None] | None) -> dict[str, Any]:
    # Gather each metric's part from both sets and compare; the accumulators die on return.
    gathered = []
    for set_name, stream in streams.items():
        accumulators = [METRICS[name].accumulator(seed, set_name, part) for name, part in parts.items()]
        for batch in stream:
            for accumulator in accumulators:
                accumulator.add(batch)
            if progress is not None:
                progress(len(batch))
        gathered.append(accumulators)
    return {name: METRICS[name].compare(real, fake, seed) for name, real, fake in zip(parts, *gathered)}


def format_metrics(result: dict) -> str:
    """Human lines, one per metric in ``result`` (as returned by ``compute_metrics``)."""
    return "\n".join(METRICS[name].format(value) for name, value in result.items())
