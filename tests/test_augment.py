"""Tests for hwgen.data.augment.random_crop_flip."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hwgen.data.augment import apply_crop_flip, random_crop_flip, sample_crop_flip


def _batch(dtype: torch.dtype = torch.uint8, n: int = 16, c: int = 3, h: int = 8,
           w: int = 6) -> torch.Tensor:
    """A random batch whose images all differ from their mirror images."""
    gen = torch.Generator().manual_seed(123)
    x = torch.randint(1, 256, (n, c, h, w), generator=gen)
    return x.to(dtype)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_shape_and_dtype_preserved(dtype: torch.dtype) -> None:
    x = _batch(dtype)
    y = random_crop_flip(x, generator=_gen())
    assert y.shape == x.shape and y.dtype == dtype and y.is_contiguous()


def test_identity_without_padding_or_flip() -> None:
    x = _batch()
    y = random_crop_flip(x, padding=0, flip=False, generator=_gen())
    assert torch.equal(y, x)
    assert y.data_ptr() != x.data_ptr()


def test_flip_only_mirrors_about_half() -> None:
    x = _batch(n=64)
    y = random_crop_flip(x, padding=0, flip=True, generator=_gen(1))
    same = (y == x).flatten(1).all(1)
    mirrored = (y == torch.flip(x, dims=[3])).flatten(1).all(1)
    assert torch.all(same ^ mirrored)  # each image is exactly one of the two
    assert 16 <= int(mirrored.sum()) <= 48
    # ... and exactly the ones the sampler marked as flipped.
    _, _, flipped = sample_crop_flip(64, padding=0, flip=True, generator=_gen(1))
    assert torch.equal(mirrored, flipped)


def test_crops_are_windows_of_the_padded_image() -> None:
    p = 3
    x = _batch(torch.float32)
    n, _, h, w = x.shape
    y = random_crop_flip(x, padding=p, flip=True, generator=_gen(2))
    dy, dx, flipped = sample_crop_flip(n, padding=p, flip=True, generator=_gen(2))
    padded = F.pad(x, (p, p, p, p))
    offsets = set()
    for i in range(n):
        window = padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        if flipped[i]:
            window = torch.flip(window, dims=[2])
        assert torch.equal(y[i], window)
        offsets.add((int(dy[i]), int(dx[i])))
        assert 0 <= dy[i] <= 2 * p and 0 <= dx[i] <= 2 * p
    assert len(offsets) > 1


def test_every_output_is_some_window() -> None:
    """Independent of the sampler: each output matches one of the candidate windows."""
    p = 2
    x = _batch()
    n, _, h, w = x.shape
    y = random_crop_flip(x, padding=p, generator=_gen(3))
    padded = F.pad(x, (p, p, p, p))
    for i in range(n):
        candidates = [padded[i, :, a:a + h, b:b + w] for a in range(2 * p + 1)
                      for b in range(2 * p + 1)]
        candidates += [torch.flip(c, dims=[2]) for c in candidates]
        assert any(torch.equal(y[i], c) for c in candidates)


def test_deterministic_with_seeded_generator() -> None:
    x = _batch()
    a = random_crop_flip(x, generator=_gen(7))
    b = random_crop_flip(x, generator=_gen(7))
    c = random_crop_flip(x, generator=_gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_apply_with_explicit_parameters() -> None:
    x = torch.arange(2 * 1 * 2 * 3, dtype=torch.uint8).reshape(2, 1, 2, 3)
    y = apply_crop_flip(x, torch.tensor([0, 2]), torch.tensor([1, 0]),
                        torch.tensor([True, False]), padding=1)
    # image 0: window at (0, 1) of the padded image, mirrored
    assert y[0, 0].tolist() == [[0, 0, 0], [2, 1, 0]]
    # image 1: window at (2, 0): the last row shifted right by 1, then the bottom padding
    assert y[1, 0].tolist() == [[0, 9, 10], [0, 0, 0]]


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        random_crop_flip(torch.zeros(3, 4, 4))
    with pytest.raises(ValueError):
        random_crop_flip(torch.zeros(1, 1, 4, 4), padding=-1)
