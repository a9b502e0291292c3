"""The PGGAN paper's metrics behind a small registry: ``swd`` and ``ms-ssim``.

The metrics themselves live in ``swd.sliced_wasserstein`` and ``ms_ssim.ms_ssim``.

Each metric gathers one accumulator per image set (reals, fakes) from the same stream of batches,
so ``compute_metrics`` reads each set once, whatever metrics are asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pgtools.errors import PgtoolsError
from pgtools.models.metrics.batches import take_images
from pgtools.models.metrics.ms_ssim import PairedMSSSIM
from pgtools.models.metrics.swd import DescriptorSet, SWDResult, compare_descriptor_sets, format_swd

__all__ = ["METRICS", "Metric", "compute_metrics", "format_metrics"]


@dataclass(frozen=True)
class Metric:
    """How one metric gathers a set, compares the two sets, and prints its result."""

    accumulator: Callable[[int, str], Any]  # (seed, set name) -> object with .add(batch)
    compare: Callable[[Any, Any, int], dict]  # (reals acc., fakes acc., seed) -> JSON-able dict
    format: Callable[[dict], str]  # that dict -> one human line
    even_count: bool = False  # needs an even number of images (pairs)


def _swd_compare(reals: DescriptorSet, fakes: DescriptorSet, seed: int) -> dict:
    return asdict(compare_descriptor_sets(reals, fakes, seed=seed))


def _swd_format(result: dict) -> str:
    sizes = ", ".join(str(r) for r in result["resolutions"])
    return f"SWD x1e3 ({sizes} / average): {format_swd(SWDResult(**result))}"


def _ms_ssim_compare(reals: PairedMSSSIM, fakes: PairedMSSSIM, seed: int) -> dict:
    return {"fakes": fakes.value(), "reals": reals.value(), "pairs": fakes.pairs}


def _ms_ssim_format(result: dict) -> str:
    return f"MS-SSIM: {result['fakes']:.4f} (reals {result['reals']:.4f}, {result['pairs']} pairs)"


METRICS: dict[str, Metric] = {
    "swd": Metric(
        accumulator=lambda seed, name: DescriptorSet(seed=seed, name=name),
        compare=_swd_compare,
        format=_swd_format,
    ),
    "ms-ssim": Metric(
        accumulator=lambda seed, name: PairedMSSSIM(name),
        compare=_ms_ssim_compare,
        format=_ms_ssim_format,
        even_count=True,
    ),
}


def compute_metrics(
    names: list[str],  # metric names from METRICS, e.g. ["swd", "ms-ssim"]
    reals: Iterable[np.ndarray],  # uint8 (n, C, H, W) batches yielding >= num_images images
    fakes: Iterable[np.ndarray],  # the same for generated images
    *,
    num_images: int,  # images taken from each set (the first num_images)
    seed: int = 0,  # seeds the random parts (SWD patches and directions)
    progress: Callable[[int], None] | None = None,  # called with the images just processed
) -> dict:
    """Compute the named metrics between reals and fakes in one pass over each set.

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
    gathered = {name: [] for name in names}
    for set_name, images in (("reals", reals), ("fakes", fakes)):
        accumulators = [METRICS[name].accumulator(seed, set_name) for name in names]
        for batch in take_images(images, num_images, set_name):
            for accumulator in accumulators:
                accumulator.add(batch)
            if progress is not None:
                progress(len(batch))
        for name, accumulator in zip(names, accumulators):
            gathered[name].append(accumulator)
    return {name: METRICS[name].compare(*gathered[name], seed) for name in names}


def format_metrics(result: dict) -> str:
    """Human lines, one per metric in ``result`` (as returned by ``compute_metrics``)."""
    return "\n".join(METRICS[name].format(value) for name, value in result.items())
