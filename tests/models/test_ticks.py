"""The ETA of the status lines: a per-resolution cost model, checked on a fake timeline (issue 12 item 15)."""

from __future__ import annotations

from functools import partial

import pytest

from pgtools.models.distributed import World
from pgtools.models.schedule import Schedule
from pgtools.models.ticks import SpeedModel, Tick, eta_seconds, image_cost, status_line

# 4x4 [0, 32), fade in 8x8 [32, 64), 8x8 [64, 96), fade in 16x16 [96, 128), 16x16 [128, 160) images.
SCHEDULE = Schedule(16, stabilize_kimg=0.032, transition_kimg=0.032, total_kimg=0.16, minibatch={4: 8, 8: 8, 16: 8})
COST = partial(image_cost, fmap_base=8192, fmap_max=512)  # 512 feature maps at 4x4, 8x8 and 16x16


def test_image_cost_sums_pixels_times_feature_maps_squared():
    assert [COST(r) / COST(4) for r in (4, 8, 16)] == [1, 5, 21]  # 16, 16 + 64, 16 + 64 + 256 pixels
    small = partial(image_cost, fmap_base=64, fmap_max=16)  # 16, 16 and 8 feature maps
    assert small(16) == 16 * 256 + 64 * 256 + 256 * 64


def speeds(**measured: float) -> SpeedModel:
    model = SpeedModel(COST, SCHEDULE.minibatch)
    for name, seconds in measured.items():
        model.measure(int(name[1:]), seconds)
    return model


def test_eta_prices_later_resolutions_by_their_cost():
    # 10 s/kimg measured at 4x4 at kimg 0.016: 0.016 kimg more of 4x4, 0.064 of 8x8 (5x), 0.064 of 16x16 (21x).
    assert eta_seconds(SCHEDULE, kimg=0.016, speeds=speeds(r4=10)) == pytest.approx(0.16 + 3.2 + 13.44)
    assert eta_seconds(SCHEDULE, kimg=0.112, speeds=speeds(r4=1, r8=5, r16=21)) == pytest.approx(0.048 * 21)
    done = speeds(r16=21)
    assert eta_seconds(SCHEDULE, kimg=0.16, speeds=done) == 0 == eta_seconds(SCHEDULE, kimg=0.168, speeds=done)


def test_two_measured_resolutions_split_overhead_from_work():
    # A machine where a step costs 2 s whatever its size plus 0.1 s x cost(r)/cost(4) per image.
    def truth(r: int) -> float:
        return 2 * 1000 / SCHEDULE.minibatch[r] + 0.1 * 1000 * COST(r) / COST(4)

    model = speeds(r4=truth(4), r8=truth(8))
    assert model.sec_per_kimg(16) == pytest.approx(truth(16))  # both terms recovered from 4x4 and 8x8
    assert speeds(r4=truth(4)).sec_per_kimg(16) > 1.5 * truth(16)  # one point: work alone, too slow
    assert speeds(r4=10, r8=10).sec_per_kimg(16) == pytest.approx(10)  # overhead only: b = 0
    assert speeds(r4=10, r8=60).sec_per_kimg(16) == pytest.approx(60 * 21 / 5)  # a < 0: cost scaling


def test_eta_of_every_tick_on_a_fake_timeline_is_the_true_time_left(monkeypatch):
    # A machine where a kimg at resolution r takes 500 s x cost(r) / cost(4): the ETA of every tick is exact.
    clock = [0.0]
    monkeypatch.setattr("pgtools.models.ticks.time.perf_counter", lambda: clock[0])
    finish = sum(500 * COST(row["resolution"]) / COST(4) * (row["kimg_end"] - row["kimg_start"])
                 for row in SCHEDULE.table())
    model = SpeedModel(COST, SCHEDULE.minibatch)
    for nimg in range(0, 160, 16):  # ticks of two steps; a status line reports its last step's phase
        tick = Tick(nimg)
        phase = SCHEDULE.at((nimg + 8) / 1000)
        tick.add({"D/loss": 0.5, "G/loss": 1.0})
        clock[0] += 0.016 * 500 * COST(phase.resolution) / COST(4)
        record = tick.close(nimg=nimg + 16, schedule=SCHEDULE, speeds=model, phase=phase, world=World(), tick=1,
                            step=1, elapsed=clock[0])
        assert record["eta_sec"] == pytest.approx(finish - clock[0], abs=0.051), nimg
    assert record["eta_sec"] == 0 and "ETA 0s" in status_line(record)
