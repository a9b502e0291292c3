"""Numerics of training and sampling: float32 like the original unless asked otherwise.

PyTorch lets cuDNN convolutions use TensorFloat-32 by default (10-bit mantissa products on Ampere
and later GPUs); the original ran in float32, so TF32 is switched off unless ``--tf32`` asks for
it. ``--amp`` autocasts only the G step: D's loss and its gradient penalty (a gradient of a
gradient) stay in float32 whatever the dtype, as do the optimizer steps and the EMA.
"""

from __future__ import annotations

import torch


def set_tf32(enabled: bool) -> None:
    """Allow (or forbid) TF32 in CUDA matmuls and cuDNN convolutions, for this process."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """The G step's autocast dtype under ``--amp``: bfloat16 where supported (CPU, recent GPUs),
    else float16 (with loss scaling); None without ``--amp``."""
    if not enabled:
        return None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16
