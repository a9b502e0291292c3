"""Metric image sets: disjoint seeded samples, seeded mirroring, and the training hook's reals."""

import numpy as np
import pytest
import torch

from pgtools.errors import PgtoolsError
from pgtools.models.metrics.sets import flips, pyramid_sample, sample_indices
from pgtools.models.schedule import Phase
from pgtools.models.snapshots import Judge
from pgtools.models.step import METRIC_DRAWS
from pgtools.pyramid import Pyramid


def test_two_samples_are_disjoint_seeded_and_refused_when_the_dataset_is_too_small(tiny_dataset):
    with Pyramid(tiny_dataset) as pyramid:
        first, second = sample_indices(pyramid, 30, seed=3, sets=2)
        assert len(first) == len(second) == 30 and not set(first) & set(second)
        again = sample_indices(pyramid, 30, seed=3, sets=2)
        assert all(np.array_equal(a, b) for a, b in zip(again, (first, second)))
        with pytest.raises(PgtoolsError) as info:
            sample_indices(pyramid, 33, seed=3, sets=2)
    assert str(info.value) == (f"{tiny_dataset} holds 64 images, too few for 2 disjoint sets of 33 "
                               "(reals against reals); use --num_images 32 or fewer")


def test_mirroring_flips_the_seeded_half(tiny_dataset):
    mask = flips(64, seed=5)
    assert mask.dtype == bool and 20 < mask.sum() < 44 and np.array_equal(mask, flips(64, seed=5))
    with Pyramid(tiny_dataset) as pyramid:
        indices = sample_indices(pyramid, 64, seed=0)[0]
        plain = pyramid.read_indices(16, indices)
        source = pyramid_sample(pyramid, 16, indices, mirror_seed=5)
        mirrored = np.concatenate(list(source()))
        assert np.array_equal(np.concatenate(list(source())), mirrored)  # a source reads again alike
    np.testing.assert_array_equal(mirrored[mask], plain[mask][..., ::-1])
    np.testing.assert_array_equal(mirrored[~mask], plain[~mask])


@pytest.mark.parametrize("mirror", [False, True])
def test_the_training_hook_mirrors_its_reals_when_the_run_mirrors(tiny_config, monkeypatch, mirror):
    config = tiny_config(metrics="swd", metrics_images=16, mirror=mirror)
    seen = {}

    def spy(names, reals, fakes, **options):
        seen["reals"] = [np.concatenate(list(reals())) for _ in range(2)]  # a source: read twice
        return {}

    monkeypatch.setattr("pgtools.models.metrics.compute_metrics", spy)
    phase = Phase(kimg=0, resolution=16, alpha=1.0, lod=0, phase_index=2, transition=False, minibatch=8, lr=0,
                  gp_halvings=0)
    Judge(config, torch.device("cpu")).metrics(None, phase)
    first, second = seen["reals"]
    with Pyramid(config.dataset) as pyramid:
        order = np.random.default_rng([config.seed, METRIC_DRAWS, 0]).permutation(pyramid.num_images)[:16]
        plain = pyramid.read_indices(16, order)
    mask = flips(16, config.seed) if mirror else np.zeros(16, bool)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first[mask], plain[mask][..., ::-1])
    np.testing.assert_array_equal(first[~mask], plain[~mask])
    assert mask.any() == mirror
