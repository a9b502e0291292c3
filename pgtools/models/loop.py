"""The Progressive GAN training loop: schedule, ticks, snapshots, metrics and resume.

Time is counted in images shown to D (``nimg``; kimg = nimg / 1000). Step ``t`` trains at
``schedule.at(nimg / 1000)`` with one D step (the feed's minibatch ``t``) and one G step (its own
latents), then updates G's moving average. Status lines, checkpoints, grids and metrics fall on
multiples of their kimg intervals. Everything a step draws is a pure function of (seed, t), so a
run resumed from a checkpoint continues exactly as if it had never stopped.

SIGINT (Ctrl-C) and SIGTERM stop training at the next step boundary (under torchrun every rank
stops at the same step): rank 0 saves a checkpoint, then :class:`Interrupted` is raised. Snapshots
and fakes grids are named by the number of images shown, so none replaces another, and a resumed
run never rewrites the checkpoint it started from.
"""

from __future__ import annotations

import time
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from torch import nn

from pgtools.errors import PgtoolsError
from pgtools.models import checkpoint as ckpt
from pgtools.models.config import TrainConfig, validate
from pgtools.models.data import RealImageFeed
from pgtools.models.distributed import World, setup, shutdown
from pgtools.models.interrupt import Interrupted, stop_requests
from pgtools.models.networks import Discriminator, Generator
from pgtools.models.plots import draw_curves
from pgtools.models.precision import set_tf32
from pgtools.models.schedule import Phase
from pgtools.models.rundir import RunDir, create_run_dir
from pgtools.models.snapshots import Judge
from pgtools.models.step import Trainer, draw_inputs
from pgtools.models.ticks import SpeedModel, Tick, image_cost, status_line
from pgtools.models.warm_start import check_networks
from pgtools.parallel import usable_cpus

Report = Callable[[str], None]
CURVES = "training_curves.png"


def network_kwargs(config: TrainConfig) -> dict[str, dict]:
    """Constructor arguments of G and D for a config (saved in every checkpoint)."""
    shared = dict(resolution=config.resolution, channels=config.channels, num_classes=config.num_classes,
                  fmap_base=config.fmap_base, fmap_max=config.fmap_max)
    if config.fused_scale:  # only then, so that the checkpoints of earlier runs still match
        shared["fused_scale"] = True
    return {"G": dict(shared, latent_dim=config.latent_dim),
            "D": dict(shared, mbstd_group_size=config.mbstd_group_size)}


def build_networks(config: TrainConfig, device: torch.device) -> tuple[nn.Module, nn.Module, nn.Module]:
    """G, D and G_ema (a copy of G) initialised from the run's seed, without touching the global RNG."""
    kwargs = network_kwargs(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        G, D = Generator(**kwargs["G"]), Discriminator(**kwargs["D"])
    G_ema = Generator(**kwargs["G"])
    G_ema.load_state_dict(G.state_dict())
    memory_format = torch.channels_last if config.channels_last else torch.preserve_format
    nets = [net.to(device, memory_format=memory_format) for net in (G, D, G_ema)]
    nets[2].eval().requires_grad_(False)
    return nets[0], nets[1], nets[2]


def _crossed(before: int, after: int, interval_kimg: float) -> bool:
    """True when ``after`` images reach a multiple of the interval that ``before`` had not."""
    interval = max(1, round(interval_kimg * 1000))
    return after // interval > before // interval


def data_workers(requested: int, local_world_size: int) -> tuple[int, str | None]:
    """``--data_workers`` capped at the CPUs usable by each process of this machine, and a warning
    when it was capped."""
    usable = max(1, usable_cpus() // local_world_size)
    if requested <= usable:
        return requested, None
    return usable, (f"--data_workers {requested}: only {usable} usable CPU"
                    f"{'s' if usable > 1 else ''} per process; using {usable}")


class _Run:
    """One training session (fresh or resumed) of one process; :attr:`run` is set by the caller once
    everything was validated and opened."""

    def __init__(self, config: TrainConfig, world: World, report: Report | None) -> None:
        self.config, self.world, self.report = config, world, report
        self.run: RunDir | None = None
        self.schedule = validate(config, world.world_size)
        self.total_nimg = round(config.total_kimg * 1000)
        self.G, self.D, self.G_ema = build_networks(config, world.device)
        self.trainer = Trainer(self.G, self.D, self.G_ema, config=config, world=world)
        cache = int(config.cache_gb * 2**30 / world.local_world_size)
        workers, capped = data_workers(config.data_workers, world.local_world_size)
        self.feed = RealImageFeed(config.dataset, cache_bytes=cache, mirror=config.mirror, seed=config.seed,
                                  rank=world.rank, world_size=world.world_size,
                                  stream_workers=workers, device=world.device)
        self.notes = [note for note in (capped, self._unused_labels()) if note]
        self.judge = Judge(config, world.device) if world.is_main else None
        self.speeds = SpeedModel(partial(image_cost, fmap_base=config.fmap_base, fmap_max=config.fmap_max),
                                 config.minibatch)
        self.step = self.nimg = self.tick_number = 0
        self.elapsed = 0.0
        self.history: list[dict] = []
        self.metric_results: list[dict] = []
        self.last_checkpoint: Path | None = None
        self.checkpoint_nimg: int | None = None  # images shown at the last checkpoint written or resumed
        self.stop_signal = 0  # set by SIGINT or SIGTERM; training stops at the next step boundary

    def _unused_labels(self) -> str | None:
        if self.feed.num_classes and not self.config.num_classes:
            return (f"the dataset has labels ({self.feed.num_classes} classes) that this run ignores; "
                    "--conditional trains on them")
        return None

    def say(self, line: str) -> None:
        """Log a line and hand it to the report callback (rank 0 only)."""
        if self.world.is_main:
            self.run.log(line)
            if self.report is not None:
                self.report(line)

    def phase(self) -> Phase:
        """Where the schedule stands after ``nimg`` images (exact arithmetic)."""
        return self.schedule.at(Fraction(self.nimg, 1000))

    # -- starting --------------------------------------------------------------------------

    def begin(self) -> None:
        """A fresh run: config.json, reals.png and the first fakes grid."""
        self.run.write_config(self.config.to_json())
        if self.judge is not None:
            self.run.save_grid("reals.png", self.judge.grid_reals, self.judge.columns)
            self._fakes_grid()
        self.say(f"training {self.config.run_name} in {self.run.path} on {self.world.device} "
                 f"({self.world.world_size} process{'es' if self.world.world_size > 1 else ''})")
        for note in self.notes:
            self.say(note)

    def restore(self, path: Path) -> None:
        """Continue from a checkpoint: networks, optimizers, position, RNG states, history."""
        state = ckpt.load_checkpoint(path)  # on the CPU: load_state_dict copies to the device
        if state["networks"] != network_kwargs(self.config):
            raise PgtoolsError(f"{path}: its networks {state['networks']} do not match the config's "
                               f"{network_kwargs(self.config)}")
        for name in ("G", "D", "G_ema"):
            getattr(self, name).load_state_dict(state[name])
        self.trainer.load_state_dict(state["trainer"])
        position, progress = state["position"], state["progress"]
        self.step, self.nimg = position["step"], position["nimg"]
        self.tick_number, self.elapsed = progress["tick"], progress["elapsed"]
        self.history, self.metric_results = progress["history"], progress["metrics"]
        ckpt.set_rng_state(state["rng"])
        self.run.truncate_stats(self.nimg / 1000)
        self.run.remove_partials()
        self.run.write_config(self.config.to_json())
        self.last_checkpoint, self.checkpoint_nimg = path, self.nimg
        phase = self.phase()
        self.say(f"resumed from {path} at kimg {self.nimg / 1000:.3f} (step {self.step}, "
                 f"{phase.resolution}x{phase.resolution}, alpha {phase.alpha:.3f})")
        for note in self.notes:
            self.say(note)

    def initialize(self, path: Path) -> str:
        """A new run from a checkpoint's G, D and G_ema, at the schedule point of its lod; returns
        the line to log once the run directory exists."""
        state = ckpt.load_checkpoint(path)
        check_networks(path, state["networks"], network_kwargs(self.config))
        for name in ("G", "D", "G_ema"):
            getattr(self, name).load_state_dict(state[name])
        self.nimg = round(self.schedule.kimg_at_lod(state["position"]["lod"]) * 1000)
        return (f"starting from the weights of {path} at kimg {self.nimg / 1000:.3f} "
                f"(lod {state['position']['lod']:g})")

    # -- the loop ----------------------------------------------------------------------------

    def train(self) -> None:
        """Run steps until ``total_kimg``, with ticks, grids, metrics and checkpoints on the way."""
        if self.nimg >= self.total_nimg:
            self.say(f"nothing to do: the run is at kimg {self.nimg / 1000:.3f} of {self.config.total_kimg}")
            return
        tick = Tick(self.nimg)
        session_start = time.perf_counter()
        elapsed_before = self.elapsed
        while self.nimg < self.total_nimg:
            if stop := self._stop_requested():
                self._stop(stop)
            phase = self.phase()
            inputs = draw_inputs(self.feed, phase, self.step, config=self.config, world=self.world,
                                 channels_last=self.config.channels_last)
            tick.add(self.trainer.step(phase, inputs, nimg=self.nimg))
            if self.trainer.bad_steps >= self.config.max_bad_steps:
                self._diverged(f"the losses were NaN or infinite for {self.trainer.bad_steps} consecutive steps")
            before, self.nimg, self.step = self.nimg, self.nimg + phase.minibatch, self.step + 1
            self.elapsed = elapsed_before + time.perf_counter() - session_start
            done = self.nimg >= self.total_nimg
            tick_ended = done or _crossed(before, self.nimg, self.config.tick_kimg)
            if tick_ended:
                self._end_tick(tick, phase)
            self._periodic(before, done)
            if tick_ended:
                tick = Tick(self.nimg)  # started after the snapshots: their time is not training time

    def request_stop(self, signum: int) -> None:
        """Called by the signal handler: stop at the next step boundary (the first signal counts)."""
        self.stop_signal = self.stop_signal or signum

    def _stop_requested(self) -> int:
        """The signal that asked to stop (0: none), agreed by every rank (the largest number)."""
        if self.world.world_size == 1:
            return self.stop_signal
        flag = torch.tensor([self.stop_signal], device=self.world.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item())

    def _stop(self, signum: int) -> None:
        """Save a checkpoint (unless one holds this very step) and raise :class:`Interrupted`."""
        if self.checkpoint_nimg != self.nimg:
            self._checkpoint()
        if self.world.world_size > 1:
            dist.barrier()  # no rank exits (and has torchrun stop the others) before rank 0 has saved
        raise Interrupted(signum, self.nimg / 1000, self.last_checkpoint, self.run.path)

    def _periodic(self, before: int, done: bool) -> None:
        """Grids, metrics and checkpoints whose interval ends at this step."""
        config = self.config
        if done or _crossed(before, self.nimg, config.image_snapshot_kimg):
            self._fakes_grid()
        if config.metrics and (done or _crossed(before, self.nimg, config.metrics_kimg)):
            self._metrics()
        if done or _crossed(before, self.nimg, config.snapshot_kimg):
            self._checkpoint()

    def _end_tick(self, tick: Tick, phase: Phase) -> None:
        self.tick_number += 1
        record = tick.close(nimg=self.nimg, schedule=self.schedule, speeds=self.speeds, phase=phase, world=self.world,
                            tick=self.tick_number, step=self.step, elapsed=self.elapsed)
        record["skipped_steps"] = self.trainer.skipped_steps
        if not self.trainer.weights_finite():
            self._diverged("the network weights became NaN or infinite")
        self.history.append({k: record[k] for k in ("kimg", "resolution", "D/loss", "G/loss")})
        if self.world.is_main:
            self.run.append_stats(record, nimg=self.nimg)
        self.say(status_line(record))

    def _diverged(self, what: str) -> None:
        kept = (f"the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint
                else "no checkpoint was written yet")
        raise PgtoolsError(f"training stopped at kimg {self.nimg / 1000:.3f}: {what}; {kept} "
                           f"(try a lower --lr, or --resume to retry from the checkpoint)")

    # -- outputs -------------------------------------------------------------------------------

    def _fakes_grid(self) -> None:
        if self.judge is not None:
            images = self.judge.fakes_grid(self.G_ema, self.phase())
            self.run.save_grid(f"fakes{self.nimg:09d}.png", images, self.judge.columns)

    def _metrics(self) -> None:
        if self.judge is None:
            return
        phase = self.phase()
        results = self.judge.metrics(self.G_ema, phase)
        record = {"kimg": round(self.nimg / 1000, 3), "step": self.step, "resolution": phase.resolution,
                  "alpha": round(phase.alpha, 4), "metrics": results}
        self.metric_results.append(record)
        self.run.append_stats(record, nimg=self.nimg)
        from pgtools.models.metrics import format_metrics

        self.say(f"metrics at kimg {record['kimg']}: " + format_metrics(results).replace("\n", "; "))
        self._curves()

    def _checkpoint(self) -> None:
        """Write a network snapshot and point latest.pt at it; never a diverging state."""
        if self.trainer.bad_steps or not self.trainer.weights_finite():
            self.say(f"checkpoint at kimg {self.nimg / 1000:.3f} skipped: the last steps were not finite")
            return
        self.checkpoint_nimg = self.nimg
        if not self.world.is_main:
            return
        path = ckpt.save_checkpoint(self._state(), self.run.path / ckpt.snapshot_name(self.nimg))
        ckpt.link_latest(path)
        ckpt.prune_snapshots(self.run.path, self.config.keep_snapshots)
        self.last_checkpoint = path
        self._curves()
        self.say(f"saved {path.name} (kimg {self.nimg / 1000:.3f})")

    def _curves(self) -> None:
        if self.history and self.world.is_main:
            draw_curves(self.history, self.run.path / CURVES, self.metric_results)

    def _state(self) -> dict:
        phase = self.phase()
        return {
            "config": self.config.to_json(),
            "networks": network_kwargs(self.config),
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "trainer": self.trainer.state_dict(),
            "position": {"step": self.step, "nimg": self.nimg, "kimg": self.nimg / 1000,
                         "resolution": phase.resolution, "alpha": phase.alpha, "lod": phase.lod,
                         "phase_index": phase.phase_index},
            "rng": ckpt.rng_state(),
            "progress": {"tick": self.tick_number, "elapsed": self.elapsed, "history": self.history,
                         "metrics": self.metric_results},
        }

    def close(self) -> None:
        self.feed.close()
        if self.run is not None:
            self.run.close()


def _run_dir(config: TrainConfig, resume: Path | None, world: World) -> RunDir:
    """The run directory: ``resume`` or a new numbered one made by rank 0 (shared with the others)."""
    if resume is not None:
        return RunDir(resume, enabled=world.is_main)
    path = [str(create_run_dir(config.outdir, config.run_name)) if world.is_main else None]
    if world.world_size > 1:
        dist.broadcast_object_list(path, src=0)
    return RunDir(path[0], enabled=world.is_main)


def train(
    config: TrainConfig,  # the run's settings (see pgtools.models.config.resolve_config)
    *,
    resume: str | Path | None = None,  # a run directory to continue (its latest.pt); None: a new run
    init: str | Path | None = None,  # a new run starts from this checkpoint's weights (train --init)
    report: Report | None = None,  # receives one status line per tick and notable events (rank 0)
    world: World | None = None,  # None: read torchrun's environment (one process without it)
) -> Path:
    """Train (or continue) a Progressive GAN; returns the run directory.

    The run directory is made only once the config, the networks and the data were set up, so a
    failed start leaves none behind.

    Raises:
        PgtoolsError: bad settings or data, or training diverged (the last good checkpoint stays).
        Interrupted: SIGINT or SIGTERM stopped training (after saving a checkpoint).
    """
    own_world = world is None
    world = world or setup(config.device)
    set_tf32(config.tf32)
    if world.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes per phase: let cuDNN pick its fastest kernels
    session = None
    try:
        resume_dir = Path(resume) if resume is not None else None
        checkpoint = ckpt.find_checkpoint(resume_dir) if resume_dir is not None else None
        session = _Run(config, world, report)
        start_note = session.initialize(Path(init)) if init is not None and checkpoint is None else None
        session.run = _run_dir(config, resume_dir, world)
        with stop_requests(session.request_stop):
            if checkpoint is not None:
                session.restore(checkpoint)
            else:
                session.begin()
                if start_note:
                    session.say(start_note)
            session.train()
        return session.run.path
    except BaseException as err:
        if session is not None and session.run is not None:
            session.run.log(f"stopped: {type(err).__name__}: {err}")
        raise
    finally:
        if session is not None:
            session.close()
        if own_world:
            shutdown()
