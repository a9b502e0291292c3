"""compute_metrics / format_metrics: one pass over each set, exact counts, JSON-able results."""

import json
from dataclasses import asdict

import numpy as np
import pytest

from pgtools.errors import PgtoolsError
from pgtools.models.metrics import METRICS, compute_metrics, count_passes, format_metrics
from pgtools.models.metrics.ms_ssim import ms_ssim
from pgtools.models.metrics.swd import sliced_wasserstein


def test_both_metrics_in_one_pass_over_streamed_sets(make_images):
    reals = make_images(13, 32, seed=0)
    fakes = make_images(11, 32, seed=1)
    seen = []
    result = compute_metrics(
        ["swd", "ms-ssim"],
        iter([reals[:5], reals[5:]]),  # more than needed: the last batch is cut
        iter([fakes[:3], fakes[3:7], fakes[7:]]),
        num_images=10,
        seed=2,
        progress=seen.append,
    )
    assert seen == [5, 5, 3, 4, 3]
    swd = sliced_wasserstein(reals[:10], fakes[:10], seed=2)
    assert result["swd"] == {
        "resolutions": swd.resolutions,
        "levels": swd.levels,
        "average": swd.average,
        "num_images": 10,
    }
    assert result["ms-ssim"]["pairs"] == 5
    assert result["ms-ssim"]["fakes"] == pytest.approx(ms_ssim(fakes[:10]), rel=1e-14)
    assert result["ms-ssim"]["reals"] == pytest.approx(ms_ssim(reals[:10]), rel=1e-14)
    assert json.loads(json.dumps(result)) == result


def test_format_metrics_prints_the_papers_layout():
    result = {
        "swd": {"resolutions": [128, 64, 32, 16], "levels": [3.42, 4.04, 4.78, 20.38],
                "average": 8.1525, "num_images": 8192},
        "ms-ssim": {"fakes": 0.30234, "reals": 0.28381, "pairs": 10000},
    }
    assert format_metrics(result) == (
        "SWD x1e3 (128, 64, 32, 16 / average): 3.42, 4.04, 4.78, 20.38 / 8.15\n"
        "MS-SSIM: 0.3023 (reals 0.2838, 10000 pairs)"
    )


def test_registry_names():
    assert sorted(METRICS) == ["ms-ssim", "swd"]


@pytest.mark.parametrize(
    ("names", "count", "available", "message"),
    [
        (["swd", "fid"], 4, 4, "unknown metric 'fid'; available: ms-ssim, swd"),
        ([], 4, 4, "no metric given; available: ms-ssim, swd"),
        (["ms-ssim"], 5, 6, "ms-ssim pairs consecutive images and needs an even num_images; got 5"),
        (["swd"], 0, 4, "num_images must be at least 1; got 0"),
        (["swd"], 6, 4, "reals: only 4 images available; 6 needed"),
    ],
)
def test_bad_requests_raise_clear_errors(make_images, names, count, available, message):
    images = make_images(available, 16, seed=3)
    with pytest.raises(PgtoolsError) as info:
        compute_metrics(names, [images], [images], num_images=count)
    assert str(info.value) == message


def test_too_few_fakes_names_the_set(make_images):
    with pytest.raises(PgtoolsError) as info:
        compute_metrics(["swd"], [make_images(4, 16, seed=4)], [make_images(2, 16, seed=5)], num_images=4)
    assert str(info.value) == "fakes: only 2 images available; 4 needed"


def test_identical_sets_batched_and_ordered_differently_give_zero_swd(make_images):
    # 300 images: the canonical reordering moves rows across the 256-image blocks.
    images = make_images(300, 16, seed=6)
    shuffled = images[np.random.default_rng(0).permutation(300)]
    result = compute_metrics(["swd"], [images[:7], images[7:]], np.split(shuffled, [256, 290]), num_images=300)
    assert result["swd"]["levels"] == [0.0] and result["swd"]["average"] == 0.0


def test_swd_level_by_level_from_sources_gives_exactly_the_one_pass_result(make_images):
    # 64x64: 3 levels. A tiny memory budget makes one pass per level, reading each source 3 times.
    reals, fakes = make_images(20, 64, seed=7), make_images(20, 64, seed=8)
    calls = []

    def source(images, name):
        def batches():
            calls.append(name)
            return iter([images[:6], images[6:]])
        return batches

    assert count_passes(["swd", "ms-ssim"], 64, 20, memory=1) == 3
    seen = []
    passes = compute_metrics(["swd", "ms-ssim"], source(reals, "reals"), source(fakes, "fakes"), num_images=20,
                             seed=1, memory=1, progress=seen.append)
    assert calls == ["reals", "fakes"] * 3 and sum(seen) == 3 * 40
    once = compute_metrics(["swd", "ms-ssim"], [reals], [fakes], num_images=20, seed=1, memory=1)
    assert passes == once
    assert passes["swd"] == asdict(sliced_wasserstein(reals, fakes, seed=1))
    assert passes["swd"]["resolutions"] == [64, 32, 16]
