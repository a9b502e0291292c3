"""RealImageFeed: exact pixels, fade-in, mirror, sharding, determinism, streaming and cleanup."""

from __future__ import annotations

import multiprocessing
import threading

import numpy as np
import pytest
import torch

from pgtools.models.data import RealImageFeed, fade, to_float
from pgtools.models.stream import FLIPS, BlockOrder, LevelStream, seeded
from pgtools.pyramid import Pyramid, write_pyramid

N, SIDE = 37, 16
EVERYTHING = 1 << 30


@pytest.fixture(scope="module")
def pyramid_path(tmp_path_factory):
    """37 random 16x16 RGB images; label i is one-hot(i), so labels reveal which image came out."""
    path = tmp_path_factory.mktemp("feed") / "tiny.h5"
    images = np.random.default_rng(1).integers(0, 256, (N, 3, SIDE, SIDE), dtype=np.uint8)
    write_pyramid(path, [images], resolution=SIDE, channels=3, labels=np.eye(N, dtype=np.float32))
    return path


def by_hand(path, resolution: int, indices) -> torch.Tensor:
    with Pyramid(path) as pyramid:
        raw = pyramid.read_indices(resolution, indices)
    return torch.from_numpy(raw.astype(np.float32) * np.float32(2 / 255) - np.float32(1))


def shown(labels: torch.Tensor) -> np.ndarray:
    """Image indices of a batch, read back from its one-hot labels."""
    return labels.argmax(dim=1).numpy()


def test_cached_batch_has_the_stream_order_images_exactly(pyramid_path):
    with RealImageFeed(pyramid_path, cache_bytes=EVERYTHING, seed=7, block_images=4) as feed:
        assert (feed.resolution, feed.channels, feed.num_images, feed.num_classes) == (SIDE, 3, N, N)
        assert feed.cached_levels == [1, 2, 4, 8, 16]
        images, labels = feed.batch(3, 8, 1.0, 6)
    order = BlockOrder(num_images=N, block_size=4, mix_blocks=4, seed=7, resolution=8)
    indices = np.concatenate([order.window((0, w)).indices for w in range(3)])[18:24]
    assert images.dtype == torch.float32 and images.shape == (6, 3, 8, 8)
    assert torch.equal(images, by_hand(pyramid_path, 8, indices))
    assert torch.equal(labels, torch.eye(N)[indices])


def test_to_float_maps_every_byte_value_exactly():
    values = np.arange(256, dtype=np.uint8)
    expected = values.astype(np.float32) * np.float32(2 / 255) - np.float32(1)
    assert np.array_equal(to_float(torch.from_numpy(values)).numpy(), expected)
    assert to_float(torch.tensor([0, 255], dtype=torch.uint8)).tolist() == [-1.0, 1.0]


def test_fade_blends_with_the_box_average_by_hand():
    x = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])  # mean 1.5
    assert torch.equal(fade(x, 0.0), torch.full((1, 1, 2, 2), 1.5))
    assert torch.equal(fade(x, 0.5), torch.tensor([[[[0.75, 1.25], [1.75, 2.25]]]]))
    assert fade(x, 1.0) is x


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_batch_fades_in_like_the_float_formula(pyramid_path, alpha):
    with RealImageFeed(pyramid_path, cache_bytes=EVERYTHING) as feed:
        images, labels = feed.batch(2, 8, alpha, 5)
    x = by_hand(pyramid_path, 8, shown(labels)).numpy()
    down = (x[..., 0::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) * np.float32(0.25)
    up = down.repeat(2, axis=2).repeat(2, axis=3)
    expected = x if alpha == 1 else up + (x - up) * np.float32(alpha)
    assert np.array_equal(images.numpy(), expected)
    if alpha == 0:
        assert np.array_equal(images.numpy()[..., 0::2, 0::2], down)


@pytest.mark.parametrize("cache_bytes", [EVERYTHING, 0])
def test_mirror_flips_the_seeded_samples_only(pyramid_path, cache_bytes):
    options = dict(cache_bytes=cache_bytes, seed=3, stream_workers=0)
    with RealImageFeed(pyramid_path, mirror=False, **options) as plain:
        a, labels_a = plain.batch(4, 16, 1.0, 12)
    with RealImageFeed(pyramid_path, mirror=True, **options) as mirrored:
        b, labels_b = mirrored.batch(4, 16, 1.0, 12)
    flips = seeded(3, FLIPS, 4).integers(0, 2, 12).astype(bool)
    assert 0 < flips.sum() < 12
    assert torch.equal(labels_a, labels_b)
    assert torch.equal(b[flips], a[flips].flip(-1))
    assert torch.equal(b[~flips], a[~flips])


@pytest.mark.parametrize("cache_bytes", [EVERYTHING, 0])
def test_rank_shards_interleave_into_the_single_rank_batch(pyramid_path, cache_bytes):
    options = dict(cache_bytes=cache_bytes, seed=5, mirror=True, stream_workers=0)
    with RealImageFeed(pyramid_path, **options) as single:
        whole = [single.batch(step, 16, 0.5, 8) for step in range(6)]
    shards = []
    for rank in range(2):
        with RealImageFeed(pyramid_path, rank=rank, world_size=2, **options) as feed:
            shards.append([feed.batch(step, 16, 0.5, 8) for step in range(6)])
    for step, (images, labels) in enumerate(whole):
        for rank in range(2):
            assert torch.equal(shards[rank][step][0], images[rank::2])
            assert torch.equal(shards[rank][step][1], labels[rank::2])


def test_sharding_needs_a_divisible_global_size_and_a_valid_rank(pyramid_path):
    with RealImageFeed(pyramid_path, cache_bytes=EVERYTHING, rank=1, world_size=2) as feed:
        with pytest.raises(ValueError, match="global_size 5 is not a positive multiple of world_size 2"):
            feed.batch(0, 8, 1.0, 5)
        with pytest.raises(ValueError, match="alpha"):
            feed.batch(0, 8, 1.5, 4)
        with pytest.raises(ValueError, match="no 32x32 level"):
            feed.batch(0, 32, 1.0, 4)
    with pytest.raises(ValueError, match="rank"):
        RealImageFeed(pyramid_path, cache_bytes=0, rank=2, world_size=2)


@pytest.mark.parametrize("cache_bytes", [EVERYTHING, 0])
def test_a_fresh_feed_resumes_bit_identically(pyramid_path, cache_bytes):
    options = dict(cache_bytes=cache_bytes, seed=11, mirror=True, stream_workers=0, block_images=4, mix_blocks=2)
    with RealImageFeed(pyramid_path, **options) as first:
        run = [first.batch(step, 16, 1.0, 8) for step in range(12)]
    with RealImageFeed(pyramid_path, **options) as resumed:
        for step in (7, 8, 11, 2):
            images, labels = resumed.batch(step, 16, 1.0, 8)
            assert torch.equal(images, run[step][0]) and torch.equal(labels, run[step][1])
    with RealImageFeed(pyramid_path, **dict(options, seed=12)) as other:
        assert not torch.equal(other.batch(7, 16, 1.0, 8)[0], run[7][0])


def test_cache_budget_decides_which_levels_stream(pyramid_path):
    with RealImageFeed(pyramid_path, cache_bytes=N * 3 * (1 + 4 + 16), stream_workers=0, block_images=5) as feed:
        assert feed.cached_levels == [1, 2, 4]
        cached = np.concatenate([shown(feed.batch(step, 4, 1.0, N)[1]) for step in range(2)])
        streamed = np.concatenate([shown(feed.batch(step, 8, 1.0, N)[1]) for step in range(2)])
    # cached and streamed levels alike show every image once per epoch
    for shows in (cached, streamed):
        assert sorted(shows[:N]) == list(range(N)) and sorted(shows[N:]) == list(range(N))
        assert not np.array_equal(shows[:N], shows[N:])
    with RealImageFeed(pyramid_path, cache_bytes=0) as feed:
        assert feed.cached_levels == []


@pytest.mark.parametrize("world_size", [1, 2])
def test_cached_and_streamed_levels_give_identical_batches(pyramid_path, world_size):
    # Issue 12 item 16: the cache changes where the bytes come from, never which images are drawn.
    options = dict(seed=5, mirror=True, block_images=4, mix_blocks=2, stream_workers=0, world_size=world_size)
    for rank in range(world_size):
        with (RealImageFeed(pyramid_path, cache_bytes=EVERYTHING, rank=rank, **options) as cached,
              RealImageFeed(pyramid_path, cache_bytes=0, rank=rank, **options) as streamed):
            assert cached.cached_levels == [1, 2, 4, 8, 16] and streamed.cached_levels == []
            for step, resolution, alpha in [(0, 4, 1.0), (3, 8, 0.25), (9, 16, 1.0), (10, 16, 1.0)]:
                a, b = cached.batch(step, resolution, alpha, 8), streamed.batch(step, resolution, alpha, 8)
                assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), (rank, step)


def test_streamed_batches_hold_the_stream_order_and_exact_pixels(pyramid_path):
    order = BlockOrder(num_images=N, block_size=4, mix_blocks=3, seed=2, resolution=16)
    expected = np.concatenate([order.window(key).indices for key in [(0, w) for w in range(4)] + [(1, 0)]])
    with RealImageFeed(pyramid_path, cache_bytes=0, seed=2, stream_workers=0, block_images=4, mix_blocks=3) as feed:
        for step in range(5):  # step 4 crosses into the second epoch
            images, labels = feed.batch(step, 16, 1.0, 8)
            assert list(shown(labels)) == list(expected[8 * step:8 * step + 8])
            assert torch.equal(images, by_hand(pyramid_path, 16, shown(labels)))


def test_windows_are_shuffled_groups_of_consecutive_blocks():
    order = BlockOrder(num_images=N, block_size=4, mix_blocks=3, seed=0, resolution=8)
    assert order.windows_per_epoch == 4  # 10 blocks, the last holding one image
    windows = [order.window((1, w)) for w in range(4)]
    assert [w.start for w in windows] == [N + sum(len(v.indices) for v in windows[:k]) for k in range(4)]
    for window in windows:
        assert all(start % 4 == 0 and stop == min(start + 4, N) for start, stop in window.blocks)
        assert sorted(window.indices) == sorted(np.concatenate([np.arange(a, b) for a, b in window.blocks]))
    assert sorted(np.concatenate([w.indices for w in windows])) == list(range(N))
    assert order.locate(windows[2].start) == (1, 2) and order.next_key((1, 3)) == (2, 0)


def test_worker_processes_give_the_same_batches_and_close_cleanly(pyramid_path):
    threads_before = set(threading.enumerate())
    options = dict(cache_bytes=0, seed=4, mirror=True, block_images=4)
    with RealImageFeed(pyramid_path, stream_workers=0, **options) as local:
        expected = [local.batch(step, 8, 0.5, 6) for step in range(10)]
    feed = RealImageFeed(pyramid_path, stream_workers=2, **options)
    for step, (images, labels) in enumerate(expected):
        got_images, got_labels = feed.batch(step, 8, 0.5, 6)
        assert torch.equal(got_images, images) and torch.equal(got_labels, labels)
    assert multiprocessing.active_children()
    feed.close()
    assert multiprocessing.active_children() == []
    assert set(threading.enumerate()) <= threads_before


def test_level_stream_reads_only_this_ranks_images(pyramid_path):
    order = BlockOrder(num_images=N, block_size=8, mix_blocks=2, seed=0, resolution=4)
    stream = LevelStream(pyramid_path, order, rank=1, world_size=3, pool=None, ahead=1)
    indices, images = stream.take(np.arange(1, 2 * N, 3))
    everything = np.concatenate([order.window(key).indices for key in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]])
    assert list(indices) == list(everything[1:2 * N:3])
    with Pyramid(pyramid_path) as pyramid:
        assert np.array_equal(images, pyramid.read_indices(4, indices))
    assert all(len(data) <= -(-len(window.indices) // 3) for window, data in stream._loaded.values())
    stream.close()
    assert stream._loaded == {}


def test_no_labels_gives_none(tmp_path):
    path = tmp_path / "plain.h5"
    write_pyramid(path, [np.zeros((3, 1, 4, 4), dtype=np.uint8)], resolution=4, channels=1)
    with RealImageFeed(path, cache_bytes=0, stream_workers=0) as feed:
        images, labels = feed.batch(0, 4, 1.0, 2)
    assert feed.num_classes == 0 and labels is None
    assert torch.equal(images, torch.full((2, 1, 4, 4), -1.0))
