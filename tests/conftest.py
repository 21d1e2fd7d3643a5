"""Shared pytest fixtures: locations of the real datasets used by tests.

Real data lives outside the repository, in ``<repo root>/../shared/data``
(MNIST idx files and a JPEG copy of CIFAR-10 with a converter) and, for
Fashion-MNIST, in ``/usr/share/datasets/fashion-mnist`` (Debian package
``dataset-fashion-mnist``). Fixtures skip with a reason when data is absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
CIFAR10_CACHE = REPO_ROOT / "data" / "cifar10"          # git-ignored
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def _convert_cifar10(cache: Path) -> None:
    """Decode the shared JPEG zip into ``cache/cifar-10-batches-bin``.

    Converts into a temporary folder next to the cache and renames it into
    place, so an interrupted or concurrent run never leaves a partial cache.
    """
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=cache))
    try:
        subprocess.run([sys.executable, str(SHARED_DATA / "cifar10_jpeg_to_bin.py"), str(tmp)],
                       check=True, capture_output=True, timeout=600)
        try:
            os.rename(tmp / "cifar-10-batches-bin", cache / "cifar-10-batches-bin")
        except OSError:
            if not (cache / "cifar-10-batches-bin" / "test_batch.bin").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def cifar10_dir() -> Path:
    """A folder containing ``cifar-10-batches-bin/`` (converted once, then cached)."""
    if (CIFAR10_CACHE / "cifar-10-batches-bin" / "test_batch.bin").is_file():
        return CIFAR10_CACHE
    if not (SHARED_DATA / "cifar10-jpeg.zip").is_file():
        pytest.skip(f"CIFAR-10 not available: {SHARED_DATA}/cifar10-jpeg.zip is absent")
    pytest.importorskip("PIL", reason="Pillow is needed to convert the CIFAR-10 JPEG copy")
    _convert_cifar10(CIFAR10_CACHE)
    return CIFAR10_CACHE


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder holding the real MNIST idx ``.gz`` files."""
    path = SHARED_DATA / "mnist"
    if not (path / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip(f"MNIST not available: no idx files in {path}")
    return path


@pytest.fixture(scope="session")
def fashion_mnist_dir() -> Path:
    """The folder holding the real Fashion-MNIST idx ``.gz`` files."""
    if not (FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST not available in {FASHION_MNIST_DIR} "
                    "(apt-get install dataset-fashion-mnist)")
    return FASHION_MNIST_DIR


@pytest.fixture(scope="session")
def tiny_mnist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small learnable dataset in MNIST idx format (see tests/synthetic.py)."""
    from synthetic import write_idx_dataset

    return write_idx_dataset(tmp_path_factory.mktemp("tiny_mnist"))
