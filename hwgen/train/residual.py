"""The residual join of a binary ResNet block (training and the float reference).

Forward, for a block output of C channels (docs/residual.md)::

    y = main + g_c * q(shortcut)          main, shortcut: (N, C, H, W); g: (C,), trained, init 1
    q(x) = b(x)   shortcut "binary"       b: quantizers.binarize, +1 for x >= 0 (the skip path's bits)
         = x      shortcut "float"        the float reference of the same network (not compilable)

``main`` is the main branch's last BatchNorm output (pre-sign); ``shortcut``
is the block input before its sign (an earlier join or BatchNorm output),
whose sign every consumer takes, so the binary shortcut carries exactly the
bits the block's first convolution reads. Backward of ``b`` per the
layer's estimator (quantizers.py); ``dy/dg_c = q(shortcut)``.

State dict: ``scale`` (C,).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hwgen.errors import ConfigError
from hwgen.train.quantizers import Estimator, as_estimator, sign_function

SHORTCUT_KINDS = ("binary", "float")


class Residual(nn.Module):
    """``main + g * q(shortcut)`` with a trained per-channel shortcut scale ``g``."""

    def __init__(self, channels: int, *, shortcut: str = "binary", estimator: Estimator | str = Estimator.STE):
        super().__init__()
        if shortcut not in SHORTCUT_KINDS:
            raise ConfigError(f"shortcut must be one of {', '.join(SHORTCUT_KINDS)}, not {shortcut!r}")
        self.channels, self.shortcut, self.estimator = channels, shortcut, as_estimator(estimator)
        self.scale = nn.Parameter(torch.ones(channels))

    def forward(self, main: Tensor, shortcut: Tensor) -> Tensor:
        """(N, C, H, W) twice -> (N, C, H, W)."""
        q = sign_function(self.estimator).apply(shortcut) if self.shortcut == "binary" else shortcut
        return main + self.scale.view(1, -1, 1, 1) * q

    def extra_repr(self) -> str:
        return f"{self.channels}, shortcut={self.shortcut}, estimator={self.estimator.value}"
