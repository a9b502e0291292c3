"""The peer for bench_quality: pro-gan-pth (akanimax's ProGAN, PyPI 3.4), trained for a wall time.

pro-gan-pth pins torch 1.10 / torchvision 0.11, which do not install on current Pythons; install it
with ``pip install --no-deps pro-gan-pth==3.4``. Its networks, WGAN-GP loss, D and G steps
(``ProGAN.optimize_discriminator`` / ``optimize_generator``) and EMA (``update_average``) run
unchanged. ``ProGAN.train`` itself counts epochs, not time, so its per-batch loop is followed here:
one latent batch per real batch, ``batch_repeats`` D steps each followed by the EMA update and a G
step, Adam(lr, betas (0.0, 0.99): its own ``(0, 0.99)`` is refused by current PyTorch), the fade-in alpha rising linearly over each new depth's fade-in.
Depths get the wall-time shares that pgtools' kimg schedule gives its resolutions. Its modules
import torchvision (image saving, transforms) and TensorBoard at module level, for things this
driver never calls; stand-ins are put in their place while importing. Its transposed convolution
calls PyTorch's private ``_output_padding`` without the ``num_spatial_dims`` argument that PyTorch 2
added; its class is given that argument's value (2).
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import sys
import time
import types

import numpy as np
import torch

PEER_HINT = "the peer needs pro-gan-pth: pip install --no-deps pro-gan-pth==3.4"
BATCH_REPEATS = 4  # pro-gan-pth's default


def _stand_ins() -> dict[str, types.ModuleType]:
    """Modules with the names pro-gan-pth imports but this driver never uses."""
    class Unused:
        def __init__(self, *args, **kwargs) -> None:
            pass

    vision, utils, transforms, board = (types.ModuleType(name) for name in (
        "torchvision", "torchvision.utils", "torchvision.transforms", "torch.utils.tensorboard"))
    utils.save_image = Unused
    for name in ("Compose", "RandomHorizontalFlip", "Resize", "ToTensor"):
        setattr(transforms, name, Unused)
    board.SummaryWriter = Unused
    vision.utils, vision.transforms = utils, transforms
    return {module.__name__: module for module in (vision, utils, transforms, board)}


def import_progan():
    """pro-gan-pth's ``(ProGAN, Generator, Discriminator, WganGP, update_average)``."""
    stand_ins = _stand_ins()
    saved = {name: sys.modules.get(name) for name in stand_ins}
    sys.modules.update(stand_ins)
    try:
        from pro_gan_pytorch.custom_layers import EqualizedConvTranspose2d, update_average
        from pro_gan_pytorch.gan import ProGAN
        from pro_gan_pytorch.losses import WganGP
        from pro_gan_pytorch.networks import Discriminator, Generator
    except ImportError:
        raise SystemExit(f"bench_quality: {PEER_HINT}") from None
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    legacy = EqualizedConvTranspose2d._output_padding

    def output_padding(self, input, output_size, stride, padding, kernel_size, num_spatial_dims=2, dilation=None):
        return legacy(self, input, output_size, stride, padding, kernel_size, num_spatial_dims, dilation)

    EqualizedConvTranspose2d._output_padding = output_padding
    return ProGAN, Generator, Discriminator, WganGP, update_average


def depth_plan(final_depth: int, phase_kimg: float, total_kimg: float) -> list[tuple[int, float, float]]:
    """(depth, share of the wall time, share of it fading in) from 4x4 up, as pgtools' kimg schedule."""
    plan = [(2, phase_kimg / total_kimg, 0.0)]
    for depth in range(3, final_depth + 1):
        kimg = 2 * phase_kimg if depth < final_depth else total_kimg - (2 * depth - 5) * phase_kimg
        plan.append((depth, kimg / total_kimg, phase_kimg / kimg))
    return plan


class PeerRun:
    """pro-gan-pth's ProGAN on uint8 (N, 1, r, r) reals, its generator snapshots kept in memory."""

    def __init__(self, reals: np.ndarray, *, latent_dim: int, lr: float, ema_beta: float, minibatch: int,
                 seed: int = 0) -> None:
        ProGAN, Generator, Discriminator, self.loss, self.update_average = import_progan()
        self.depth = int(math.log2(reals.shape[-1]))
        torch.manual_seed(seed)
        nets = [net(depth=self.depth, num_channels=1, latent_size=latent_dim) for net in (Generator, Discriminator)]
        with contextlib.redirect_stdout(io.StringIO()):  # ProGAN prints both networks
            self.gan = ProGAN(*nets, device=torch.device("cpu"), use_ema=True, ema_beta=ema_beta)
        self.gen_optim = torch.optim.Adam(self.gan.gen.parameters(), lr=lr, betas=(0.0, 0.99), eps=1e-8)
        self.dis_optim = torch.optim.Adam(self.gan.dis.parameters(), lr=lr, betas=(0.0, 0.99), eps=1e-8)
        self.reals = torch.from_numpy(reals).float().div(127.5).sub(1.0)
        self.minibatch, self.latent_dim = minibatch, latent_dim
        self.generator = torch.Generator().manual_seed(seed)
        self.images_shown = 0  # real images shown to D, repeats included (as pgtools counts kimg)

    def _batches(self):
        while True:
            order = torch.randperm(len(self.reals), generator=self.generator)
            for start in range(0, len(order) - self.minibatch + 1, self.minibatch):
                yield self.reals[order[start:start + self.minibatch]]

    def train(self, seconds: float, plan: list[tuple[int, float, float]], snapshot_times: list[float]):
        """Train for ``seconds``; yields (kimg, elapsed, depth, alpha, generator copy) at each snapshot time."""
        batches, loss = self._batches(), self.loss()
        pending, elapsed = list(snapshot_times), 0.0
        start = time.perf_counter()
        depth_start = 0.0
        for depth, share, fade_share in plan:
            depth_end = depth_start + share * seconds
            alpha = 1.0
            while elapsed < depth_end:
                fade_seconds = fade_share * share * seconds
                alpha = min(1.0, (elapsed - depth_start) / fade_seconds) if fade_seconds else 1.0
                images = next(batches)
                noise = torch.randn(self.minibatch, self.latent_dim, generator=self.generator)
                for _ in range(BATCH_REPEATS):
                    self.gan.optimize_discriminator(loss, self.dis_optim, noise, images, depth, alpha)
                    self.update_average(self.gan.gen_shadow, self.gan.gen, beta=self.gan.ema_beta)
                    self.gan.optimize_generator(loss, self.gen_optim, noise, images, depth, alpha)
                self.images_shown += BATCH_REPEATS * self.minibatch
                elapsed = time.perf_counter() - start
                while pending and elapsed >= pending[0]:
                    pending.pop(0)
                    yield self.images_shown / 1000, elapsed, depth, alpha, copy.deepcopy(self.gan.gen_shadow)
            depth_start = depth_end
        if pending:  # the last snapshot time fell within the final step
            yield self.images_shown / 1000, elapsed, depth, alpha, copy.deepcopy(self.gan.gen_shadow)
