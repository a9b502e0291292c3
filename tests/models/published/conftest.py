"""Published-network files for the tests: the genuine fixtures in data/, and writers that make
more in the same on-disk layouts from known pgtools weights."""

from __future__ import annotations

import pickle
import sys
import types
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from pgtools.models.networks import Discriminator, Generator
from pgtools.models.published.nvidia import from_pgtools
from pgtools.models.published.zoo import BaseConfig

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def exact_float32(one_thread):
    """fp32 without TF32 shortcuts (they only matter on GPUs, but say so)."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@contextmanager
def _registered(name: str, **attributes):
    """A throwaway module ``name`` holding ``attributes``, so that pickle names classes as the originals did."""
    module = types.ModuleType(name)
    for key, value in attributes.items():
        value.__module__, value.__qualname__ = name, key
        setattr(module, key, value)
    saved = sys.modules.get(name)
    sys.modules[name] = module
    try:
        yield
    finally:
        if saved is None:
            del sys.modules[name]
        else:
            sys.modules[name] = saved


class _Network:
    """Pickles as the TF release's tfutil.Network: its state dict through __getstate__."""

    def __init__(self, state: dict) -> None:
        self.state = state

    def __getstate__(self) -> dict:
        return self.state


def write_tf_pickle(path: Path, networks: list[dict], protocol: int = 4) -> Path:
    """Pickle dicts (name, build_func_name, static_kwargs, variables) as tfutil.Network states."""
    with _registered("tfutil", Network=_Network):
        objects = tuple(_Network({"version": 2, "build_module_src": "# networks.py (not needed)\n", **net,
                                  "variables": list(net["variables"].items())}) for net in networks)
        path.write_bytes(pickle.dumps(objects, protocol=protocol))
    return path


def random_biases(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Non-zero biases (pgtools starts them at zero), so that the tests see every variable."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.endswith("bias"):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
    return module


def tf_networks(*, seed: int = 0, lod: float = 0.0, **kwargs) -> tuple[list[dict], dict]:
    """(G, D, Gs) states of random pgtools networks built with G_paper/D_paper ``kwargs``, and the modules."""
    static = {"num_channels": 3, "resolution": 16, "label_size": 0, "fmap_base": 64, "fmap_max": 16, **kwargs}
    fused = static.get("fused_scale", True)
    shared = dict(resolution=static["resolution"], channels=static["num_channels"], num_classes=static["label_size"],
                  fmap_base=static["fmap_base"], fmap_max=static["fmap_max"], fused_scale=fused)
    g_options = dict(shared, latent_dim=static.get("latent_size") or min(static["fmap_base"], static["fmap_max"]))
    d_options = dict(shared, mbstd_group_size=static.get("mbstd_group_size", 4))
    torch.manual_seed(seed)
    modules = {"G": random_biases(Generator(**g_options), seed), "D": random_biases(Discriminator(**d_options), seed + 1),
               "Gs": random_biases(Generator(**g_options), seed + 2)}
    states = []
    for name, role, func in (("G", "generator", "G_paper"), ("D", "discriminator", "D_paper"),
                             ("Gs", "generator", "G_paper")):
        options = {**(g_options if role == "generator" else d_options)}
        variables = from_pgtools(modules[name], options, role, lod)
        states.append({"name": name, "build_func_name": func, "static_kwargs": dict(static), "variables": variables})
    return states, modules


@pytest.fixture
def tf_pickle(tmp_path):
    """``tf_pickle(name, **G_paper kwargs)`` -> (path, pgtools modules G, D, Gs)."""

    def make(name: str = "net.pkl", *, seed: int = 0, lod: float = 0.0, protocol: int = 4, **kwargs):
        states, modules = tf_networks(seed=seed, lod=lod, **kwargs)
        return write_tf_pickle(tmp_path / name, states, protocol), modules

    return make


def write_zoo(path: Path, config: dict, netG: dict, avgG: dict | None = None, netD: dict | None = None, *,
              legacy: bool = False) -> Path:
    """torch.save a pytorch_GAN_zoo-style checkpoint, its config a models.utils.config.BaseConfig.

    ``legacy``: torch's pre-1.6 file format, which the hub's 2019 checkpoints use."""
    with _registered("models.utils.config", BaseConfig=BaseConfig):
        bag = BaseConfig()
        bag.__dict__.update(config)
        torch.save({"config": bag, "netG": netG, "netD": netD or {}, "avgG": avgG or netG}, path,
                   _use_new_zipfile_serialization=not legacy)
    return path
