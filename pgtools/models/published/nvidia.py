"""NVIDIA's TF release networks (``G_paper`` / ``D_paper``) as pgtools Generator / Discriminator.

Variables map one to one: TF convs are ``[k, k, in, out]`` (the fused upscale conv
``[k, k, out, in]``), dense layers ``[in, out]``; pgtools keeps PyTorch layouts with the same
equalized-learning-rate scaling, so only transposes are needed. ``lod`` becomes the working
resolution and fade-in alpha the TF graph evaluates at.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import nn

from pgtools.errors import PgtoolsError
from pgtools.models.networks import Discriminator, Generator
from pgtools.models.published.tfpickle import TFNetwork

# G_paper / D_paper options pgtools computes exactly as the TF release's defaults do.
FIXED_OPTIONS = {"fmap_decay": 1.0, "normalize_latents": True, "use_wscale": True, "use_pixelnorm": True,
                 "pixelnorm_epsilon": 1e-8, "use_leakyrelu": True, "dtype": "float32"}
BUILD_FUNCS = {"G_paper": "generator", "D_paper": "discriminator"}


def _options(net: TFNetwork, role: str) -> dict:
    """pgtools constructor arguments for a TF network, or PgtoolsError naming what cannot map."""
    if BUILD_FUNCS.get(net.build_func_name) != role:
        raise PgtoolsError(f"network {net.name!r} is built by {net.build_func_name!r}; pgtools maps the "
                           f"TF release's {'G_paper' if role == 'generator' else 'D_paper'} only")
    kw = net.static_kwargs
    for name, default in FIXED_OPTIONS.items():
        if name in kw and kw[name] != default:
            raise PgtoolsError(f"network {net.name!r} was built with {net.build_func_name} option "
                               f"{name}={kw[name]!r}; pgtools supports only {name}={default!r}")
    fmap_base, fmap_max = int(kw.get("fmap_base", 8192)), int(kw.get("fmap_max", 512))
    options = dict(resolution=int(kw.get("resolution", 32)), channels=int(kw.get("num_channels", 1)),
                   num_classes=int(kw.get("label_size", 0)), fmap_base=fmap_base, fmap_max=fmap_max)
    if kw.get("fused_scale", True):
        options["fused_scale"] = True
    if role == "generator":
        latent = kw.get("latent_size")
        options["latent_dim"] = int(latent) if latent is not None else min(fmap_base, fmap_max)
    else:
        options["mbstd_group_size"] = int(kw.get("mbstd_group_size", 4))
    return options


def _conv(value: np.ndarray) -> np.ndarray:
    return value.transpose(3, 2, 0, 1)  # [k, k, in, out] -> (out, in, k, k)


def _up_conv(value: np.ndarray) -> np.ndarray:
    return value.transpose(2, 3, 0, 1)  # [k, k, out, in] -> (out, in, k, k)


def _dense(value: np.ndarray) -> np.ndarray:
    return value.T  # [in, out] -> (out, in)


Names = dict[str, tuple[str, Callable | None]]  # pgtools parameter -> (TF variable, layout change)


def _layer(names: Names, module: str, scope: str, layout: Callable) -> None:
    """Map one layer: its weight (changing ``layout``) and its bias."""
    names[f"{module}.weight"] = (f"{scope}/weight", layout)
    names[f"{module}.bias"] = (f"{scope}/bias", None)


def _generator_names(options: dict) -> Names:
    """The variables of G_paper."""
    final = options["resolution"]
    names = {"blocks.4.dense.weight": ("4x4/Dense/weight", _dense), "blocks.4.bias": ("4x4/Dense/bias", None)}
    _layer(names, "blocks.4.conv", "4x4/Conv", _conv)
    for log2 in range(2, final.bit_length()):
        res = 1 << log2
        _layer(names, f"to_rgb.{res}", f"ToRGB_lod{final.bit_length() - 1 - log2}", _conv)
        if res > 4:
            fused = options.get("fused_scale")
            _layer(names, f"blocks.{res}.conv0", f"{res}x{res}/Conv0" + ("_up" if fused else ""),
                   _up_conv if fused else _conv)
            _layer(names, f"blocks.{res}.conv1", f"{res}x{res}/Conv1", _conv)
    return names


def _discriminator_names(options: dict) -> Names:
    """The variables of D_paper."""
    final = options["resolution"]
    names: Names = {}
    _layer(names, "blocks.4.conv", "4x4/Conv", _conv)
    _layer(names, "blocks.4.dense0", "4x4/Dense0", _dense)
    _layer(names, "blocks.4.dense1", "4x4/Dense1", _dense)
    for log2 in range(2, final.bit_length()):
        res = 1 << log2
        _layer(names, f"from_rgb.{res}", f"FromRGB_lod{final.bit_length() - 1 - log2}", _conv)
        if res > 4:
            _layer(names, f"blocks.{res}.conv0", f"{res}x{res}/Conv0", _conv)
            _layer(names, f"blocks.{res}.conv1", f"{res}x{res}/Conv1" + ("_down" if options.get("fused_scale") else ""),
                   _conv)
    return names


def _names(options: dict, role: str) -> Names:
    return _generator_names(options) if role == "generator" else _discriminator_names(options)


def to_pgtools(net: TFNetwork, role: str) -> tuple[nn.Module, dict]:
    """A pgtools ``Generator`` or ``Discriminator`` (role) holding a TF network's weights.

    Returns:
        (network, constructor arguments).

    Raises:
        PgtoolsError: an unsupported build option, or variables missing, extra or misshapen.
    """
    options = _options(net, role)
    try:
        module = (Generator if role == "generator" else Discriminator)(**options)
    except ValueError as err:
        raise PgtoolsError(f"network {net.name!r}: {err}") from None
    names = _names(options, role)
    expected = {tf_name for tf_name, _ in names.values()} | {"lod"}
    missing, extra = sorted(expected - set(net.variables)), sorted(set(net.variables) - expected)
    if missing or extra:
        raise PgtoolsError(f"network {net.name!r} does not have the variables of {net.build_func_name} with "
                           f"{net.static_kwargs}: missing {missing or 'none'}, unexpected {extra or 'none'}")
    state = {}
    params = module.state_dict()
    for param, (tf_name, layout) in names.items():
        value = net.variables[tf_name]
        value = layout(value) if layout is not None else value
        if tuple(value.shape) != tuple(params[param].shape):
            raise PgtoolsError(f"network {net.name!r}: variable {tf_name} has shape {net.variables[tf_name].shape}, "
                               f"expected one that maps to {tuple(params[param].shape)}")
        state[param] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    module.load_state_dict(state)
    return module, options


def from_pgtools(module: nn.Module, options: dict, role: str, lod: float = 0.0) -> dict[str, np.ndarray]:
    """The TF variables (name -> array) of a pgtools network: the inverse of :func:`to_pgtools`."""
    inverse = {_conv: lambda v: v.transpose(2, 3, 1, 0), _up_conv: lambda v: v.transpose(2, 3, 0, 1),
               _dense: lambda v: v.T, None: lambda v: v}
    params = module.state_dict()
    variables = {tf_name: np.ascontiguousarray(inverse[layout](params[param].detach().cpu().numpy()))
                 for param, (tf_name, layout) in _names(options, role).items()}
    variables["lod"] = np.float32(lod)
    return variables


def working_point(lod: float, resolution: int) -> tuple[int, float]:
    """(working resolution, alpha) at which G_paper evaluates for ``lod`` (final resolution ``resolution``)."""
    top = resolution.bit_length() - 3
    if not (math.isfinite(lod) and 0 <= lod <= top):
        raise PgtoolsError(f"lod {lod} is outside 0..{top} for a {resolution}x{resolution} network")
    whole = math.floor(lod)
    return resolution >> whole, 1.0 - (lod - whole)
