"""Small synthetic datasets written in the standard on-disk formats, for fast tests.

``write_idx_dataset`` writes the four MNIST idx files for a *learnable* task:
class k images are noise plus a bright 6x6 square at a position that depends
on k, so a working trainer reaches high accuracy in a few epochs while a
broken one stays near chance (10%).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(magic: int, array: np.ndarray) -> bytes:
    """Encode a uint8 array in the idx format (big-endian int32 magic and dimensions)."""
    header = struct.pack(">" + "i" * (1 + array.ndim), magic, *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def square_images(labels: np.ndarray, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """(N, size, size) uint8: noise in [0, 60) plus a 6x6 square of 255 placed by class."""
    images = rng.integers(0, 60, size=(len(labels), size, size), dtype=np.uint8)
    for i, k in enumerate(labels):
        r, c = 2 + 5 * (int(k) // 4), 2 + 6 * (int(k) % 4)
        images[i, r:r + 6, c:c + 6] = 255
    return images


def write_idx_dataset(root: Path, n_train: int = 512, n_test: int = 128, seed: int = 0, gz: bool = True) -> Path:
    """Write a learnable MNIST-format dataset into ``root``; returns ``root``."""
    rng = np.random.default_rng(seed)
    train_labels = rng.integers(0, 10, n_train).astype(np.uint8)
    test_labels = rng.integers(0, 10, n_test).astype(np.uint8)
    arrays = (square_images(train_labels, rng), train_labels, square_images(test_labels, rng), test_labels)
    write_idx_files(root, dict(zip(IDX_NAMES, arrays)), gz=gz)
    return root


def write_idx_files(root: Path, arrays: dict[str, np.ndarray], gz: bool) -> None:
    """Write each ``name -> array`` as ``root/name`` (or ``name.gz``); magic 2051 for images, 2049 for labels."""
    root.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        data = idx_bytes(2051 if array.ndim == 3 else 2049, array)
        if gz:
            (root / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (root / name).write_bytes(data)
