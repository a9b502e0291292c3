"""pytorch_GAN_zoo's Progressive GAN (the torch.hub ``PGAN``) as a faithful generator and discriminator.

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

Its discriminator (``netD``, rebuilt by :class:`ZooDiscriminator`) differs as well: the same bias
scaling, a decision layer of gain sqrt(2), a hidden dense layer of ``depthScale0`` units, no
blending at all while its first added scale (8x8) fades in, and its own minibatch standard
deviation (:func:`zoo_minibatch_stddev`, off unless ``miniBatchStdDev``).
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
D_RENAMES = (("fromRGBLayers.", "from_rgb."), ("groupScaleZero.0.", "scale0."), ("groupScaleZero.1.", "dense."),
             ("scaleLayers.", "blocks."), ("decisionLayer.", "decision."))


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


def zoo_minibatch_stddev(x: Tensor, group_size: int = 4) -> Tensor:
    """The zoo's ``miniBatchStdDev``, which differs from NVIDIA's in three ways.

    The variance is unbiased (divides by G - 1); a minibatch that G does not divide forms one
    group of all its samples; and although groups are strided (group j: samples j, j + N/G, ...)
    sample i receives the statistic of group i // G.
    """
    n, c, h, w = x.shape
    size = min(n, group_size)
    if n % size:
        size = n
    if size <= 1:
        return torch.cat([x, x.new_zeros(n, 1, h, w)], dim=1)
    stat = (x.reshape(size, n // size, c, h, w).var(dim=0) + 1e-8).sqrt().reshape(n // size, -1).mean(dim=1)
    return torch.cat([x, stat.repeat_interleave(size).reshape(n, 1, 1, 1).expand(n, 1, h, w)], dim=1)


class ZooDiscriminator(nn.Module):
    """pytorch_GAN_zoo's ``DNet`` at its last scale, with pgtools' ``forward`` signature."""

    def __init__(
        self,
        depths: list[int],  # feature maps per scale from 4x4 up (depthScale0, *depthOtherScales)
        channels: int = 3,  # dimOutput
        leak: float = 0.2,  # leakyReluLeak
        equalized: bool = True,  # equalizedlR
        mbstd: bool = False,  # miniBatchStdDev
        outputs: int = 1,  # size of the decision layer
    ) -> None:
        super().__init__()
        self.resolution, self.channels, self.leak, self.mbstd = 4 << (len(depths) - 1), channels, leak, mbstd
        self.from_rgb = nn.ModuleList(_ZooLayer(nn.Conv2d(channels, depth, 1), equalized) for depth in depths)
        self.blocks = nn.ModuleList(
            nn.ModuleList([_ZooLayer(nn.Conv2d(depth, depth, 3, padding=1), equalized),
                           _ZooLayer(nn.Conv2d(depth, before, 3, padding=1), equalized)])
            for before, depth in zip(depths, depths[1:]))
        self.scale0 = _ZooLayer(nn.Conv2d(depths[0] + int(mbstd), depths[0], 3, padding=1), equalized)
        self.dense = _ZooLayer(nn.Linear(depths[0] * 16, depths[0]), equalized)
        self.decision = _ZooLayer(nn.Linear(depths[0], outputs), equalized)

    def forward(self, images: Tensor, *, alpha: float = 1.0) -> Tensor:
        """Scores (N,) (or (N, outputs)) as the zoo's ``DNet.forward`` with its alpha = 1 - ``alpha``."""
        old_weight = 1.0 - alpha
        if old_weight > 0 and len(self.blocks) > 1:  # the zoo does not blend at its first added scale
            old = F.leaky_relu(self.from_rgb[-2](F.avg_pool2d(images, 2)), self.leak)
        x = F.leaky_relu(self.from_rgb[-1](images), self.leak)
        for index, block in enumerate(reversed(self.blocks)):
            for conv in block:
                x = F.leaky_relu(conv(x), self.leak)
            x = F.avg_pool2d(x, 2)
            if index == 0 and old_weight > 0 and len(self.blocks) > 1:
                x = old_weight * old + (1.0 - old_weight) * x
        if self.mbstd:
            x = zoo_minibatch_stddev(x)
        x = F.leaky_relu(self.scale0(x), self.leak)
        x = self.decision(F.leaky_relu(self.dense(x.flatten(1)), self.leak))
        return x[:, 0] if x.shape[1] == 1 else x


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


def _load_weights(module: nn.Module, state: dict, which: str, renames: tuple) -> nn.Module:
    """Load the zoo state dict ``state[which]`` (keys with or without ``.module.``) into ``module``."""
    if which not in state:
        raise PgtoolsError(f"the checkpoint has no {which} (it holds {', '.join(k for k in state if k != 'config')})")
    weights = {}
    for key, value in state[which].items():
        key = key.replace(".module.", ".").removeprefix("module.")
        for old, new in renames:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        *owner, leaf = key.split(".")
        weights[".".join([*owner, "layer", leaf])] = value
    try:
        module.load_state_dict(weights)
    except RuntimeError as err:
        detail = " ".join(str(err).split())  # one line
        raise PgtoolsError(f"{which} does not match its config {state['config']}: {detail}") from None
    return module


def zoo_generator(state: dict, which: str) -> ZooGenerator:
    """The ``netG`` or ``avgG`` of a zoo checkpoint read by :func:`read_zoo`."""
    return _load_weights(ZooGenerator(**zoo_options(state["config"])), state, which, RENAMES)


def zoo_discriminator(state: dict) -> ZooDiscriminator:
    """The ``netD`` of a zoo checkpoint read by :func:`read_zoo`."""
    options = zoo_options(state["config"])
    module = ZooDiscriminator(options["depths"], options["channels"], options["leak"], options["equalized"],
                              bool(state["config"].get("miniBatchStdDev", False)))
    return _load_weights(module, state, "netD", D_RENAMES)
