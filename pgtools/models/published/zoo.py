"""pytorch_GAN_zoo's Progressive GAN (the torch.hub ``PGAN``) as a faithful generator.

A zoo checkpoint is ``torch.save({'config': BaseConfig, 'netG': ..., 'netD': ..., 'avgG': ...})``
(``avgG`` the averaged generator that ``test(z, getAvG=True)`` uses). It is read with
``torch.load(weights_only=True)``, the config class mapped onto a plain stand-in.

The zoo's generator differs from NVIDIA's (and pgtools') in ways that change its outputs, so it
is rebuilt here rather than mapped onto :class:`~pgtools.models.networks.Generator`:

- every layer multiplies its whole output, bias included, by He's constant sqrt(2 / fan_in);
- the 4x4 dense layer has gain sqrt(2) (NVIDIA: sqrt(2)/4) and one bias per output unit
  (16 per channel; NVIDIA: one per channel);
- toRGB layers have gain sqrt(2) (NVIDIA: 1);
- the feature maps per scale are a free list (``depthScale0``, ``depthOtherScales``);
- its ``alpha`` is the weight of the *old* (upsampled) image: pgtools alpha = 1 - zoo alpha;
- the leaky ReLU slope, equalized learning rate and a final tanh (losses MSE and DCGAN) are
  options.
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pgtools.errors import PgtoolsError
from pgtools.models.networks import pixel_norm

TANH_LOSSES = ("MSE", "DCGAN")  # the zoo's losses whose generationActivation is tanh
KNOWN_LOSSES = TANH_LOSSES + ("WGANGP", "Logistic")
RENAMES = (("formatLayer.", "format_layer."), ("groupScale0.0.", "scale0."),
           ("scaleLayers.", "blocks."), ("toRGBLayers.", "to_rgb."))


class BaseConfig:
    """Stand-in for the zoo's ``models.utils.config.BaseConfig`` (an attribute bag)."""


BaseConfig.__module__ = "models.utils.config"


class _ZooLayer(nn.Module):
    """A zoo ``ConstrainedLayer``: conv or linear whose output (bias included) is scaled by He's constant."""

    def __init__(self, layer: nn.Module, equalized: bool) -> None:
        super().__init__()
        self.layer = layer
        fan_in = math.prod(layer.weight.shape[1:])
        self.scale = math.sqrt(2.0 / fan_in) if equalized else 1.0

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x) * self.scale


class ZooGenerator(nn.Module):
    """pytorch_GAN_zoo's ``GNet`` at its last scale, with pgtools' ``forward`` signature."""

    def __init__(
        self,
        latent_dim: int,  # latentVectorDim
        depths: list[int],  # feature maps per scale from 4x4 up (depthScale0, *depthOtherScales)
        channels: int = 3,  # dimOutput
        leak: float = 0.2,  # leakyReluLeak
        equalized: bool = True,  # equalizedlR
        tanh: bool = False,  # the loss's generationActivation is tanh
    ) -> None:
        super().__init__()
        self.latent_dim, self.channels, self.num_classes = latent_dim, channels, 0
        self.resolution = 4 << (len(depths) - 1)
        self.leak, self.tanh = leak, tanh
        self.format_layer = _ZooLayer(nn.Linear(latent_dim, 16 * depths[0]), equalized)
        self.scale0 = _ZooLayer(nn.Conv2d(depths[0], depths[0], 3, padding=1), equalized)
        self.blocks = nn.ModuleList(
            nn.ModuleList([_ZooLayer(nn.Conv2d(before, depth, 3, padding=1), equalized),
                           _ZooLayer(nn.Conv2d(depth, depth, 3, padding=1), equalized)])
            for before, depth in zip(depths, depths[1:]))
        self.to_rgb = nn.ModuleList(_ZooLayer(nn.Conv2d(depth, channels, 1), equalized) for depth in depths)

    def _act(self, x: Tensor) -> Tensor:
        return pixel_norm(F.leaky_relu(x, self.leak))

    def forward(self, z: Tensor, labels: Tensor | None = None, *, resolution: int, alpha: float = 1.0) -> Tensor:
        """Images (N, channels, r, r) as the zoo's ``GNet.forward`` with its alpha = 1 - ``alpha``."""
        if labels is not None:
            raise ValueError("labels were given to an unconditional generator")
        if resolution != self.resolution:
            raise ValueError(f"a pytorch_GAN_zoo generator runs at its last scale {self.resolution} only")
        old_weight = 1.0 - alpha
        x = self._act(self.format_layer(pixel_norm(z.reshape(len(z), -1))).reshape(len(z), -1, 4, 4))
        x = self._act(self.scale0(x))
        old = None
        if old_weight > 0 and len(self.blocks) == 1:
            old = F.interpolate(self.to_rgb[-2](x), scale_factor=2.0, mode="nearest")
        for index, block in enumerate(self.blocks):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            for conv in block:
                x = self._act(conv(x))
            if old_weight > 0 and index == len(self.blocks) - 2:
                old = F.interpolate(self.to_rgb[-2](x), scale_factor=2.0, mode="nearest")
        x = self.to_rgb[-1](x)
        if old is not None:
            x = old_weight * old + (1.0 - old_weight) * x
        return torch.tanh(x) if self.tanh else x


def read_zoo(path: str | os.PathLike) -> dict:
    """The zoo checkpoint's dict, with ``config`` as a plain dict (nothing from the file is run)."""
    try:
        with torch.serialization.safe_globals([BaseConfig]):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for foreign or damaged files
        raise PgtoolsError(f"{path}: not a readable pytorch_GAN_zoo checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict) or not {"config", "netG"} <= set(state):
        raise PgtoolsError(f"{path}: expected a pytorch_GAN_zoo checkpoint (a dict with config, netG, netD, avgG)")
    config = state["config"]
    state["config"] = dict(vars(config)) if isinstance(config, BaseConfig) else dict(config)
    return state


def zoo_options(config: dict) -> dict:
    """ZooGenerator arguments from a zoo config, or PgtoolsError naming what is not supported."""
    if config.get("categoryVectorDim", 0):
        raise PgtoolsError("this pytorch_GAN_zoo model is conditional (AC-GAN attributes "
                           f"{config.get('attribKeysOrder')}); only unconditional zoo models are supported")
    if not config.get("perChannelNormalization", True):
        raise PgtoolsError("perChannelNormalization=False: the zoo's own GNet cannot run without it")
    loss = config.get("lossCriterion", "WGANGP")
    if loss not in KNOWN_LOSSES:
        raise PgtoolsError(f"lossCriterion {loss!r} is unknown (known: {', '.join(KNOWN_LOSSES)})")
    return dict(latent_dim=int(config["latentVectorDim"]),
                depths=[int(config["depthScale0"]), *map(int, config.get("depthOtherScales", []))],
                channels=int(config.get("dimOutput", 3)), leak=float(config.get("leakyReluLeak", 0.2)),
                equalized=bool(config.get("equalizedlR", True)), tanh=loss in TANH_LOSSES)


def zoo_generator(state: dict, which: str) -> ZooGenerator:
    """The ``netG`` or ``avgG`` of a zoo checkpoint read by :func:`read_zoo`."""
    if which not in state:
        raise PgtoolsError(f"the checkpoint has no {which} (it holds {', '.join(k for k in state if k != 'config')})")
    generator = ZooGenerator(**zoo_options(state["config"]))
    weights = {}
    for key, value in state[which].items():
        key = key.replace(".module.", ".").removeprefix("module.")
        for old, new in RENAMES:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        *owner, leaf = key.split(".")
        weights[".".join([*owner, "layer", leaf])] = value
    try:
        generator.load_state_dict(weights)
    except RuntimeError as err:
        detail = " ".join(str(err).split())  # one line
        raise PgtoolsError(f"{which} does not match its config {state['config']}: {detail}") from None
    return generator
