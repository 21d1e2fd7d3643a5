"""Batch data augmentation on tensors (no torchvision needed).

:func:`random_crop_flip` is the standard CIFAR augmentation: zero-pad each
image by ``padding`` pixels, take a random HxW window, and mirror it
horizontally with probability 1/2. It works on a whole batch at once with a
single ``torch.gather``; there is no Python loop over images.
"""

from __future__ import annotations

import torch

__all__ = ["random_crop_flip", "sample_crop_flip", "apply_crop_flip"]


def sample_crop_flip(n: int, *, padding: int = 4, flip: bool = True,
                     generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw per-image crop offsets and flip decisions.

    Returns ``(dy, dx, flipped)``, each of shape (n,): ``dy`` and ``dx`` are
    int64 offsets uniform in ``0..2*padding`` (the top-left corner of the
    window in the padded image), ``flipped`` is a bool mask that is True with
    probability 1/2 when ``flip`` is set (all False otherwise). The draws are
    made in this order from ``generator``, so a seeded generator makes them
    reproducible.
    """
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    device = generator.device if generator is not None else torch.device("cpu")
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device)
    if flip:
        flipped = torch.randint(0, 2, (n,), generator=generator, device=device).bool()
    else:
        flipped = torch.zeros(n, dtype=torch.bool, device=device)
    return dy, dx, flipped


def apply_crop_flip(images: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor,
                    flipped: torch.Tensor, *, padding: int) -> torch.Tensor:
    """Crop and flip a batch with given parameters (see :func:`sample_crop_flip`).

    With ``P = zero_pad(images, padding)`` of shape (N, C, H+2p, W+2p), the
    output is, for every image n, channel c, row i in 0..H-1, column j in 0..W-1::

        out[n, c, i, j] = P[n, c, dy[n] + i, dx[n] + j']
        j' = W - 1 - j  if flipped[n]  else  j

    i.e. the window at (dy, dx), mirrored left-right when ``flipped[n]``. It
    is computed as one ``gather`` on P flattened to (N, C, (H+2p)*(W+2p)) with
    the flat index ``(dy + i) * (W + 2p) + dx + j'`` of shape (N, H*W),
    broadcast over channels.
    """
    n, c, h, w = images.shape
    hp, wp = h + 2 * padding, w + 2 * padding
    padded = images.new_zeros((n, c, hp, wp))
    padded[:, :, padding:padding + h, padding:padding + w] = images
    dev = images.device
    dy, dx, flipped = dy.to(dev), dx.to(dev), flipped.to(dev)
    rows = dy[:, None] + torch.arange(h, device=dev)                  # (N, H)
    j = torch.arange(w, device=dev)
    cols = dx[:, None] + torch.where(flipped[:, None], w - 1 - j, j)  # (N, W)
    flat = (rows[:, :, None] * wp + cols[:, None, :]).reshape(n, 1, h * w)
    out = padded.reshape(n, c, hp * wp).gather(2, flat.expand(n, c, h * w))
    return out.reshape(n, c, h, w)


def random_crop_flip(images: torch.Tensor, *, padding: int = 4, flip: bool = True,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Randomly crop (after zero padding) and horizontally flip each image.

    ``images``: (N, C, H, W), any dtype (uint8 or float). Each image gets an
    independent crop offset uniform in ``0..2*padding`` per axis and, if
    ``flip``, a left-right mirror with probability 1/2. Returns a new tensor of
    the same shape, dtype and device; deterministic for a given ``generator``
    state. ``padding=0, flip=False`` returns an unchanged copy.
    """
    if images.dim() != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
    dy, dx, flipped = sample_crop_flip(images.shape[0], padding=padding, flip=flip,
                                       generator=generator)
    return apply_crop_flip(images, dy, dx, flipped, padding=padding)
