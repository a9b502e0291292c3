"""The ETA of the status lines: a per-resolution cost model, checked on a fake timeline (issue 12 item 15)."""

from __future__ import annotations

from functools import partial

import pytest

from pgtools.models.distributed import World
from pgtools.models.schedule import Schedule
from pgtools.models.ticks import Tick, eta_seconds, image_cost, status_line

# 4x4 [0, 32), fade in 8x8 [32, 64), 8x8 [64, 96), fade in 16x16 [96, 128), 16x16 [128, 160) images.
SCHEDULE = Schedule(16, stabilize_kimg=0.032, transition_kimg=0.032, total_kimg=0.16, minibatch={4: 8, 8: 8, 16: 8})
COST = partial(image_cost, fmap_base=8192, fmap_max=512)  # 512 feature maps at 4x4, 8x8 and 16x16


def test_image_cost_sums_pixels_times_feature_maps_squared():
    assert [COST(r) / COST(4) for r in (4, 8, 16)] == [1, 5, 21]  # 16, 16 + 64, 16 + 64 + 256 pixels
    small = partial(image_cost, fmap_base=64, fmap_max=16)  # 16, 16 and 8 feature maps
    assert small(16) == 16 * 256 + 64 * 256 + 256 * 64


def test_eta_prices_later_resolutions_by_their_cost():
    eta = partial(eta_seconds, SCHEDULE, cost=COST)
    # 10 s/kimg measured at 4x4 at kimg 0.016: 0.016 kimg more of 4x4, 0.064 of 8x8 (5x), 0.064 of 16x16 (21x).
    assert eta(kimg=0.016, resolution=4, sec_per_kimg=10) == pytest.approx(0.16 + 3.2 + 13.44)
    assert eta(kimg=0.112, resolution=16, sec_per_kimg=21) == pytest.approx(0.048 * 21)
    assert eta(kimg=0.16, resolution=16, sec_per_kimg=21) == 0 == eta(kimg=0.168, resolution=16, sec_per_kimg=21)


def test_eta_of_every_tick_on_a_fake_timeline_is_the_true_time_left(monkeypatch):
    # A machine where a kimg at resolution r takes 500 s x cost(r) / cost(4): the ETA of every tick is exact.
    clock = [0.0]
    monkeypatch.setattr("pgtools.models.ticks.time.perf_counter", lambda: clock[0])
    finish = sum(500 * COST(row["resolution"]) / COST(4) * (row["kimg_end"] - row["kimg_start"])
                 for row in SCHEDULE.table())
    for nimg in range(0, 160, 16):  # ticks of two steps; a status line reports its last step's phase
        tick = Tick(nimg)
        phase = SCHEDULE.at((nimg + 8) / 1000)
        tick.add({"D/loss": 0.5, "G/loss": 1.0})
        clock[0] += 0.016 * 500 * COST(phase.resolution) / COST(4)
        record = tick.close(nimg=nimg + 16, schedule=SCHEDULE, cost=COST, phase=phase, world=World(), tick=1,
                            step=1, elapsed=clock[0])
        assert record["eta_sec"] == pytest.approx(finish - clock[0], abs=0.051), nimg
    assert record["eta_sec"] == 0 and "ETA 0s" in status_line(record)
