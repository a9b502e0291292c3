"""The Progressive GAN generator and discriminator (Karras et al. 2018, TF release layout).

Both networks hold every block from 4x4 up to their final resolution from the start, so a
checkpoint or an optimizer always sees every parameter; ``forward`` runs only the blocks up to the
working resolution and fades the newest one in by ``alpha``. All layers use the equalized learning
rate: weights are stored N(0, 1) and scaled by ``gain / sqrt(fan_in)`` at run time.
"""

from __future__ import annotations

import math
import operator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LRELU_SLOPE = 0.2
MBSTD_EPS = 1e-8


def _log2_exact(value: int, what: str) -> int:
    """log2 of a positive power of two, or ValueError naming ``what``."""
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{what} must be a power of two, got {value!r}") from None
    if value < 1 or value & (value - 1):
        raise ValueError(f"{what} must be a power of two, got {value!r}")
    return value.bit_length() - 1


def _levels(resolution: int) -> int:
    """Number of blocks of a network for ``resolution`` (4x4 is one), or ValueError."""
    log2 = _log2_exact(resolution, "resolution")
    if log2 < 2:
        raise ValueError(f"resolution must be at least 4, got {resolution}")
    return log2 - 1


def features(res: int, fmap_base: int = 8192, fmap_max: int = 512) -> int:
    """Feature maps of the block at resolution ``res``: min(fmap_base / 2^(log2 res − 1), fmap_max).

    With the paper's defaults: 512 up to 32x32, then 256, 128, 64, 32 and 16 at 1024x1024.
    """
    stage = _log2_exact(res, "resolution") - 1
    return int(min(fmap_base / 2.0**stage, fmap_max))


def pixel_norm(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Normalise every pixel's feature vector (dim 1) to unit average square.

    The statistic is computed in float32 and the result keeps the input's dtype, so the layer
    behaves the same under autocast.
    """
    scale = torch.rsqrt(x.float().square().mean(dim=1, keepdim=True) + eps)
    return x * scale.to(x.dtype)


def minibatch_stddev(x: Tensor, group_size: int = 4) -> Tensor:
    """Append the minibatch standard deviation as one extra feature map (TF release semantics).

    The minibatch of N is split into groups of G = min(group_size, N) samples, formed by strides
    as TF's reshape to (G, N/G, ...) does: group j holds samples j, j + N/G, j + 2N/G, .... For
    each group, the population standard deviation ``sqrt(var + 1e-8)`` of every feature at every
    pixel is averaged into one value, appended as a constant channel to each member.

    Raises:
        ValueError: N is not divisible by G.
    """
    n, c, h, w = x.shape
    g = min(group_size, n)
    if n % g:
        raise ValueError(
            f"minibatch stddev: the minibatch of {n} samples is not divisible by the group size "
            f"{g}; use a minibatch that is a multiple of {g} or another group size"
        )
    groups = x.float().reshape(g, n // g, c, h, w)
    var = (groups - groups.mean(dim=0)).square().mean(dim=0)
    stat = (var + MBSTD_EPS).sqrt().mean(dim=(1, 2, 3))  # one value per group, (N/G,)
    stat = stat.repeat(g).to(x.dtype).reshape(n, 1, 1, 1).expand(n, 1, h, w)
    return torch.cat([x, stat], dim=1)


class EqualConv2d(nn.Module):
    """Square 'same' convolution with equalized learning rate (weights N(0, 1), bias 0)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 gain: float = math.sqrt(2), bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualLinear(nn.Module):
    """Dense layer with equalized learning rate (weights N(0, 1), bias 0)."""

    def __init__(self, in_features: int, out_features: int, *,
                 gain: float = math.sqrt(2), bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class FusedUpConv2d(EqualConv2d):
    """2x upsampling fused with a 3x3 conv (TF release ``upscale2d_conv2d``, ``fused_scale=True``).

    The kernel is padded to 4x4 and summed over its four 3x3 shifts, then applied as a stride-2
    transposed convolution; the weight keeps the (out, in, 3, 3) layout of a plain conv.
    """

    def forward(self, x: Tensor) -> Tensor:
        w = F.pad(self.weight * self.scale, (1, 1, 1, 1))
        w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]
        return F.conv_transpose2d(x, w.transpose(0, 1), self.bias, stride=2, padding=1)


class FusedConvDown2d(EqualConv2d):
    """A 3x3 conv fused with 2x2 average pooling (TF release ``conv2d_downscale2d``)."""

    def forward(self, x: Tensor) -> Tensor:
        w = F.pad(self.weight * self.scale, (1, 1, 1, 1))
        w = (w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]) * 0.25
        return F.conv2d(x, w, self.bias, stride=2, padding=1)


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, LRELU_SLOPE)


def _upsample(x: Tensor) -> Tensor:
    """Nearest-neighbour 2x upsampling."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class _GInput(nn.Module):
    """Generator 4x4 block: dense to C x 4 x 4 (+ per-channel bias), then a 3x3 conv."""

    def __init__(self, in_features: int, channels: int) -> None:
        super().__init__()
        # TF release: gain sqrt(2)/4, as it treats the dense layer as 16 outputs per unit.
        self.dense = EqualLinear(in_features, channels * 16, gain=math.sqrt(2) / 4, bias=False)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.conv = EqualConv2d(channels, channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = self.dense(x).reshape(x.shape[0], -1, 4, 4) + self.bias.reshape(1, -1, 1, 1)
        x = pixel_norm(_lrelu(x))
        return pixel_norm(_lrelu(self.conv(x)))


class _GBlock(nn.Module):
    """Generator block: 2x nearest upsample, then two 3x3 convs with lrelu and pixel norm.

    With ``fused_scale`` the upsampling and the first conv are one transposed convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, fused_scale: bool = False) -> None:
        super().__init__()
        self.fused_scale = fused_scale
        self.conv0 = (FusedUpConv2d if fused_scale else EqualConv2d)(in_channels, out_channels, 3)
        self.conv1 = EqualConv2d(out_channels, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv0(x) if self.fused_scale else self.conv0(_upsample(x))
        x = pixel_norm(_lrelu(x))
        return pixel_norm(_lrelu(self.conv1(x)))


def _check_working(resolution: int, final: int, alpha: float) -> int:
    """Validate a working resolution and fade-in alpha; return log2(resolution)."""
    log2 = _log2_exact(resolution, "working resolution")
    if not 4 <= resolution <= final:
        raise ValueError(f"working resolution {resolution} is outside 4..{final}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if alpha < 1.0 and resolution == 4:
        raise ValueError("alpha < 1 (a fade-in) needs a working resolution above 4")
    return log2


class Generator(nn.Module):
    """Progressive GAN generator; images are linear (unbounded) in the [-1, 1] data range."""

    def __init__(
        self,
        resolution: int,  # final output resolution, a power of two >= 4
        channels: int = 3,  # image channels
        latent_dim: int = 512,  # length of z
        num_classes: int = 0,  # 0: unconditional; else one-hot labels are appended to z
        fmap_base: int = 8192,  # feature maps: min(fmap_base / 2^(log2(res)-1), fmap_max)
        fmap_max: int = 512,
        fused_scale: bool = False,  # True: upsample + conv as one transposed conv (TF option)
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.channels = channels
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        nf = [features(4 << i, fmap_base, fmap_max) for i in range(_levels(resolution))]
        self.blocks = nn.ModuleDict({"4": _GInput(latent_dim + num_classes, nf[0])})
        self.to_rgb = nn.ModuleDict({"4": EqualConv2d(nf[0], channels, 1, gain=1.0)})
        for i in range(1, len(nf)):
            res = str(4 << i)
            self.blocks[res] = _GBlock(nf[i - 1], nf[i], fused_scale)
            self.to_rgb[res] = EqualConv2d(nf[i], channels, 1, gain=1.0)

    def build_noise(self, n: int, generator: torch.Generator | None = None,
                    device: torch.device | str | None = None) -> Tensor:
        """N(0, 1) latents of shape (n, latent_dim), on ``device`` or the RNG's device."""
        if device is None and generator is not None:
            device = generator.device
        return torch.randn(n, self.latent_dim, generator=generator, device=device)

    def _input(self, z: Tensor, labels: Tensor | None) -> Tensor:
        """z, with one-hot labels appended when conditional, pixel-normalised."""
        if self.num_classes == 0:
            if labels is not None:
                raise ValueError("labels were given to an unconditional generator")
            return pixel_norm(z)
        if labels is None:
            raise ValueError(f"this generator is conditional ({self.num_classes} classes); "
                             "labels are required")
        if labels.is_floating_point():
            onehot = labels
        else:
            onehot = F.one_hot(labels.long(), self.num_classes)
        return pixel_norm(torch.cat([z, onehot.to(z.dtype)], dim=1))

    def forward(self, z: Tensor, labels: Tensor | None = None, *,
                resolution: int, alpha: float = 1.0) -> Tensor:
        """Generate images (N, channels, resolution, resolution) at the working resolution.

        Args:
            z: latents (N, latent_dim).
            labels: class indices (N,) or one-hot / soft labels (N, num_classes); None when
                unconditional.
            resolution: working resolution, a power of two in 4..self.resolution.
            alpha: fade-in weight of the newest block; below 1 the output is
                ``lerp(upsample(toRGB_prev(x_prev)), toRGB_new(x_new), alpha)``.
        """
        top = _check_working(resolution, self.resolution, alpha)
        x = self.blocks["4"](self._input(z, labels))
        prev = x
        for log2 in range(3, top + 1):
            prev = x
            x = self.blocks[str(1 << log2)](x)
        images = self.to_rgb[str(resolution)](x)
        if alpha < 1.0:
            old = _upsample(self.to_rgb[str(resolution // 2)](prev))
            images = torch.lerp(old.to(images.dtype), images, alpha)
        return images


class _DBlock(nn.Module):
    """Discriminator block: two 3x3 convs with lrelu, then 2x2 average pooling.

    With ``fused_scale`` the second conv and the pooling are one stride-2 convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, fused_scale: bool = False) -> None:
        super().__init__()
        self.fused_scale = fused_scale
        self.conv0 = EqualConv2d(in_channels, in_channels, 3)
        self.conv1 = (FusedConvDown2d if fused_scale else EqualConv2d)(in_channels, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = _lrelu(self.conv1(_lrelu(self.conv0(x))))
        return x if self.fused_scale else F.avg_pool2d(x, 2)


class _DOutput(nn.Module):
    """Discriminator 4x4 block: mbstd, 3x3 conv, dense 4x4 -> hidden, dense -> 1 + classes."""

    def __init__(self, channels: int, hidden: int, outputs: int, mbstd_group_size: int) -> None:
        super().__init__()
        self.mbstd_group_size = mbstd_group_size
        extra = 1 if mbstd_group_size > 1 else 0
        self.conv = EqualConv2d(channels + extra, channels, 3)
        self.dense0 = EqualLinear(channels * 16, hidden)
        self.dense1 = EqualLinear(hidden, outputs, gain=1.0)

    def forward(self, x: Tensor) -> Tensor:
        if self.mbstd_group_size > 1:
            x = minibatch_stddev(x, self.mbstd_group_size)
        x = _lrelu(self.conv(x))
        x = _lrelu(self.dense0(x.flatten(1)))
        return self.dense1(x)


class Discriminator(nn.Module):
    """Progressive GAN discriminator (critic), with AC-GAN label logits when conditional."""

    def __init__(
        self,
        resolution: int,  # final input resolution, a power of two >= 4
        channels: int = 3,  # image channels
        num_classes: int = 0,  # 0: scores only; else also num_classes label logits
        fmap_base: int = 8192,  # feature maps: min(fmap_base / 2^(log2(res)-1), fmap_max)
        fmap_max: int = 512,
        mbstd_group_size: int = 4,  # minibatch-stddev group size; 0 or 1 disables the layer
        fused_scale: bool = False,  # True: conv + 2x2 pooling as one stride-2 conv (TF option)
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.channels = channels
        self.num_classes = num_classes
        levels = _levels(resolution)
        nf = [features(4 << i, fmap_base, fmap_max) for i in range(levels)]
        hidden = features(2, fmap_base, fmap_max)
        self.blocks = nn.ModuleDict({"4": _DOutput(nf[0], hidden, 1 + num_classes,
                                                    mbstd_group_size)})
        self.from_rgb = nn.ModuleDict()
        for i in range(levels):
            res = str(4 << i)
            self.from_rgb[res] = EqualConv2d(channels, nf[i], 1)
            if i > 0:
                self.blocks[res] = _DBlock(nf[i], nf[i - 1], fused_scale)

    def forward(self, images: Tensor, *, alpha: float = 1.0) -> Tensor:
        """Score images (N, channels, r, r); the working resolution r is the images' size.

        Below alpha 1 the input path is ``lerp(fromRGB_prev(avgpool(img)),
        block_new(fromRGB_new(img)), alpha)``.

        Returns:
            (N,) scores when unconditional, else (N, 1 + num_classes): column 0 the score, the
            rest label logits.
        """
        resolution = images.shape[-1]
        if images.ndim != 4 or images.shape[-2] != resolution or images.shape[1] != self.channels:
            raise ValueError(f"expected images (N, {self.channels}, r, r), got "
                             f"{tuple(images.shape)}")
        top = _check_working(resolution, self.resolution, alpha)
        x = _lrelu(self.from_rgb[str(resolution)](images))
        for log2 in range(top, 2, -1):
            x = self.blocks[str(1 << log2)](x)
            if log2 == top and alpha < 1.0:
                old = _lrelu(self.from_rgb[str(resolution // 2)](F.avg_pool2d(images, 2)))
                x = torch.lerp(old.to(x.dtype), x, alpha)
        out = self.blocks["4"](x)
        return out[:, 0] if self.num_classes == 0 else out
