"""Tests for the progressive-growing schedule: exact boundaries, lookups, lr ramp, validation."""

import dataclasses
import json
import math

import pytest

from pgtools.models.schedule import TF_1GPU_MINIBATCH, THEANO_MINIBATCH, Phase, Schedule

# (kimg, resolution, alpha, lod, phase_index, transition) for 4 -> 16 with T = F = 600.
PAPER_16 = [
    (0, 4, 1.0, 2.0, 0, False),  # start of the first stabilise phase
    (599.999, 4, 1.0, 2.0, 0, False),
    (600, 4, 1.0, 2.0, 0, False),  # first instant of the fade-in: old resolution, alpha 1
    (750, 8, 0.25, 1.75, 0, True),
    (900, 8, 0.5, 1.5, 0, True),
    (1199.4, 8, 0.999, 1.001, 0, True),
    (1200, 8, 1.0, 1.0, 1, False),  # fade-in over: stabilise 8x8
    (1800, 8, 1.0, 1.0, 1, False),
    (1950, 16, 0.25, 0.75, 1, True),
    (2400, 16, 1.0, 0.0, 2, False),  # the final resolution from here on
    (2400.001, 16, 1.0, 0.0, 2, False),
    (3600, 16, 1.0, 0.0, 2, False),  # would be a fade-in if there were a next resolution
    (50000, 16, 1.0, 0.0, 2, False),  # past total_kimg: keeps holding
]


@pytest.mark.parametrize("kimg,resolution,alpha,lod,phase_index,transition", PAPER_16)
def test_phase_at_boundaries(kimg, resolution, alpha, lod, phase_index, transition):
    minibatch = {4: 64, 8: 32, 16: 16}
    phase = Schedule(16, total_kimg=5000, minibatch=minibatch).at(kimg)
    assert phase == Phase(kimg=kimg, resolution=resolution, alpha=alpha, lod=lod,
                          phase_index=phase_index, transition=transition,
                          minibatch=minibatch[resolution], lr=0.001,
                          gp_halvings=math.floor(lod))
    assert phase.lod_key == (math.floor(lod), math.ceil(lod))


def test_exact_arithmetic_with_decimal_kimg():
    # T = 0.3, F = 0.1 are not binary fractions; boundaries must still be exact.
    schedule = Schedule(8, stabilize_kimg=0.3, transition_kimg=0.1, total_kimg=1)
    assert schedule.at(0.3) == Phase(
        kimg=0.3, resolution=4, alpha=1.0, lod=1.0, phase_index=0, transition=False,
        minibatch=128, lr=0.001, gp_halvings=1)
    assert (schedule.at(0.35).alpha, schedule.at(0.35).lod) == (0.5, 0.5)
    assert (schedule.at(0.4).lod, schedule.at(0.4).transition) == (0.0, False)
    assert schedule.at(1234 / 1000).resolution == 8


def test_lod_key_changes_at_every_fade_in_and_stabilise_start():
    schedule = Schedule(16, stabilize_kimg=6, transition_kimg=6, total_kimg=30)
    changes, key = [], None
    for nimg in range(0, 30_000, 100):
        phase = schedule.at(nimg / 1000)
        if phase.lod_key != key:
            changes.append((nimg, phase.lod_key, phase.resolution, phase.gp_halvings))
            key = phase.lod_key
    assert changes == [
        (0, (2, 2), 4, 2),
        (6100, (1, 2), 8, 1),  # first step after kimg = T: the 8x8 fade-in
        (12000, (1, 1), 8, 1),
        (18100, (0, 1), 16, 0),
        (24000, (0, 0), 16, 0),
    ]


def test_start_resolution_above_four():
    schedule = Schedule(64, start_resolution=16, total_kimg=4000, minibatch=THEANO_MINIBATCH)
    assert (schedule.at(0).resolution, schedule.at(0).lod) == (16, 2.0)
    assert (schedule.at(900).resolution, schedule.at(900).alpha) == (32, 0.5)
    assert schedule.at(2400).resolution == 64
    assert schedule.resolutions == [16, 32, 64]


def test_minibatch_and_lr_follow_the_working_resolution():
    schedule = Schedule(1024, total_kimg=12000, lr_per_resolution={1024: 0.0015})
    fade_ins = [schedule.at(700 + 1200 * p) for p in range(8)]  # during each fade-in
    assert [(f.resolution, f.minibatch) for f in fade_ins] == [
        (8, 128), (16, 128), (32, 64), (64, 32), (128, 16), (256, 8), (512, 4), (1024, 4)]
    assert all(f.transition for f in fade_ins)
    assert [schedule.at(k).minibatch for k in (0, 8500, 9600)] == [128, 4, 4]
    assert schedule.at(9100).lr == 0.0015 and schedule.at(8900).lr == 0.001
    assert schedule.at(12000).lr == 0.0015


def test_lr_rampup():
    schedule = Schedule(16, total_kimg=100, lr=0.002, lr_rampup_kimg=40)
    assert schedule.at(0).lr == pytest.approx(0.002 * math.exp(-5))
    assert schedule.at(20).lr == pytest.approx(0.002 * math.exp(-1.25))
    assert schedule.at(40).lr == 0.002 and schedule.at(90).lr == 0.002
    assert Schedule(16, total_kimg=100).at(0).lr == 0.001


def test_table_rows_until_total_kimg():
    schedule = Schedule(16, total_kimg=3000, minibatch={4: 64, 8: 32, 16: 16},
                        lr_per_resolution={16: 0.002})
    assert schedule.table() == [
        {"resolution": 4, "kimg_start": 0.0, "kimg_end": 600.0, "minibatch": 64, "lr": 0.001,
         "phase": "stabilize"},
        {"resolution": 8, "kimg_start": 600.0, "kimg_end": 1200.0, "minibatch": 32, "lr": 0.001,
         "phase": "fade-in"},
        {"resolution": 8, "kimg_start": 1200.0, "kimg_end": 1800.0, "minibatch": 32,
         "lr": 0.001, "phase": "stabilize"},
        {"resolution": 16, "kimg_start": 1800.0, "kimg_end": 2400.0, "minibatch": 16,
         "lr": 0.002, "phase": "fade-in"},
        {"resolution": 16, "kimg_start": 2400.0, "kimg_end": 3000.0, "minibatch": 16,
         "lr": 0.002, "phase": "stabilize"},
    ]
    short = Schedule(16, total_kimg=900).table()
    assert [(r["resolution"], r["kimg_end"], r["phase"]) for r in short] == \
        [(4, 600.0, "stabilize"), (8, 900.0, "fade-in")]
    assert Schedule(4, total_kimg=10).table() == [
        {"resolution": 4, "kimg_start": 0.0, "kimg_end": 10.0, "minibatch": 128, "lr": 0.001,
         "phase": "stabilize"}]


def test_paper_tables():
    assert TF_1GPU_MINIBATCH == {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8,
                               512: 4, 1024: 4}
    assert [THEANO_MINIBATCH[r] for r in (4, 128, 256, 512, 1024)] == [16, 16, 14, 6, 3]


def test_json_round_trip_of_the_config():
    schedule = Schedule(16, total_kimg=100, lr_per_resolution={16: 0.002})
    config = json.loads(json.dumps(dataclasses.asdict(schedule)))
    assert Schedule(**config) == schedule  # string keys from JSON become resolutions again


@pytest.mark.parametrize("kwargs,message", [
    (dict(final_resolution=24), "final resolution must be a power of two >= 4, got 24"),
    (dict(final_resolution=2), "final resolution must be a power of two >= 4, got 2"),
    (dict(final_resolution=16, start_resolution=32), "start resolution 32 is above the final"),
    (dict(final_resolution=16, stabilize_kimg=0), "stabilize_kimg must be positive"),
    (dict(final_resolution=16, transition_kimg=-1), "transition_kimg must be positive"),
    (dict(final_resolution=16, total_kimg=0), "total_kimg must be positive"),
    (dict(final_resolution=16, total_kimg=float("nan")), "total_kimg must be finite"),
    (dict(final_resolution=2048), "minibatch needs a positive integer for resolution 2048"),
    (dict(final_resolution=16, minibatch={4: 8, 8: 0, 16: 8}),
     "minibatch needs a positive integer for resolution 8"),
    (dict(final_resolution=16, minibatch={"four": 8}), "minibatch keys must be resolutions"),
    (dict(final_resolution=16, lr_per_resolution={32: 0.1}), "lr_per_resolution {32: 0.1}"),
    (dict(final_resolution=16, lr=0), "lr must be positive"),
    (dict(final_resolution=16, lr_rampup_kimg=-5), "lr_rampup_kimg must be >= 0"),
])
def test_validation(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        Schedule(**kwargs)


def test_negative_kimg():
    with pytest.raises(ValueError, match="kimg must be >= 0, got -1"):
        Schedule(16).at(-1)
