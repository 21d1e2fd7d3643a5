"""Image-classification datasets read from their standard on-disk formats.

Three datasets are supported, each read from the files users download:

* ``cifar10``: the binary layout (``cifar-10-batches-bin/``: ``data_batch_1.bin``
  .. ``data_batch_5.bin`` and ``test_batch.bin``, records of 1 label byte +
  3072 pixel bytes, the R, G and B planes of 32x32 row-major pixels) or the
  python layout (``cifar-10-batches-py/``: pickled dicts with ``b'data'``, an
  N x 3072 uint8 array in the same pixel order, and ``b'labels'``). The pickles
  are read with a restricted unpickler that can only rebuild numpy arrays, so
  a tampered file cannot run code.
* ``mnist`` and ``fashion_mnist``: the four idx files
  (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``), raw or ``.gz``.

Every problem the user can fix (missing folder or file, wrong size, bad magic
number, unsafe pickle) raises :class:`hwgen.errors.DatasetError` with a
message that names the file and what was expected.

Images are returned as uint8 tensors of shape (N, C, H, W); labels as int64
tensors of shape (N,).
"""

from __future__ import annotations

import gzip
import os
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from hwgen.errors import DatasetError

__all__ = ["DATASET_NAMES", "Dataset", "dataset_shape", "load_dataset"]

DATASET_NAMES = ("cifar10", "mnist", "fashion_mnist")


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A loaded dataset: uint8 images (N, C, H, W) and int64 labels (N,).

    ``mean`` and ``std`` are per-channel statistics of the training pixels
    scaled to [0, 1] (the standard published values), for normalisation as
    ``(x / 255 - mean) / std``.
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...]
    files: tuple[str, ...] = ()  #: the files read, in order (train then test)

    def __repr__(self) -> str:
        """Summarise sizes only (the default repr would print the tensors)."""
        return (f"Dataset(name={self.name!r}, train={tuple(self.train_images.shape)}, "
                f"test={tuple(self.test_images.shape)}, num_classes={self.num_classes})")


@dataclass(frozen=True)
class _Spec:
    """Static facts about one dataset."""

    title: str
    shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...]


_SPECS: dict[str, _Spec] = {
    "cifar10": _Spec(
        "CIFAR-10", (3, 32, 32), (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
        ("airplane", "automobile", "bird", "cat", "deer",
         "dog", "frog", "horse", "ship", "truck")),
    "mnist": _Spec(
        "MNIST", (1, 28, 28), (0.1307,), (0.3081,),
        tuple(str(d) for d in range(10))),
    "fashion_mnist": _Spec(
        "Fashion-MNIST", (1, 28, 28), (0.2860,), (0.3530,),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")),
}


def _spec(name: str) -> _Spec:
    """Look up a dataset by name, or raise DatasetError listing the known names."""
    try:
        return _SPECS[name]
    except (KeyError, TypeError):
        raise DatasetError(
            f"unknown dataset {name!r}: expected one of {', '.join(DATASET_NAMES)}") from None


def dataset_shape(name: str) -> tuple[int, int, int]:
    """Return the (C, H, W) image shape of a dataset without loading it."""
    return _spec(name).shape


def load_dataset(name: str, data_dir: str | os.PathLike) -> Dataset:
    """Load dataset ``name`` from ``data_dir`` (see the module docstring for layouts)."""
    spec = _spec(name)
    root = Path(data_dir)
    if name == "cifar10":
        train, test, files = _load_cifar10(root)
    else:
        train, test, files = _load_idx_dataset(root, spec)
        _check_identity(name, spec, train[0], root)
    return Dataset(
        name=name,
        train_images=torch.from_numpy(train[0]),
        train_labels=torch.from_numpy(train[1].astype(np.int64)),
        test_images=torch.from_numpy(test[0]),
        test_labels=torch.from_numpy(test[1].astype(np.int64)),
        num_classes=len(spec.classes),
        mean=spec.mean,
        std=spec.std,
        classes=spec.classes,
        files=tuple(str(f) for f in files),
    )


#: A dataset's training images whose mean pixel lies farther than this from its published mean, and
#: within _SAME of another same-shaped dataset's, are that other dataset (MNIST 0.1307, Fashion-MNIST 0.2860).
_FAR, _SAME = 0.05, 0.01


def _check_identity(name: str, spec: _Spec, train_images: np.ndarray, root: Path) -> None:
    """DatasetError when the files of ``name`` are in fact another dataset of the same format and shape.

    MNIST and Fashion-MNIST share the idx format and the 28x28 shape, so a
    wrong ``--data-dir`` would otherwise train on one labelled as the other.
    The mean training pixel (x / 255) tells them apart; data matching neither
    (synthetic test sets) is accepted.
    """
    if not len(train_images):
        return
    mean = float(train_images.mean(dtype=np.float64)) / 255.0
    if abs(mean - spec.mean[0]) <= _FAR:
        return
    for other, o in _SPECS.items():
        if other != name and o.shape == spec.shape and abs(mean - o.mean[0]) <= _SAME:
            raise DatasetError(
                f"the files in {root} look like {o.title}, not {spec.title}: their mean training pixel is "
                f"{mean:.4f} ({o.title} {o.mean[0]:.4f}, {spec.title} {spec.mean[0]:.4f}); pass --dataset {other} "
                f"or the {spec.title} folder as --data-dir")


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------

_Split = tuple[np.ndarray, np.ndarray]  # images (N, C, H, W) uint8, labels (N,) uint8


def _read_bytes(path: Path) -> bytearray:
    """Read a whole file into a writable buffer (so numpy views are writable).

    ``.gz`` files are decompressed; a corrupt archive raises DatasetError.
    """
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return bytearray(f.read())
        buf = bytearray(path.stat().st_size)
        with open(path, "rb") as f:
            got = f.readinto(buf)
        return buf[:got] if got != len(buf) else buf
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None


def _check_labels(labels: np.ndarray, num_classes: int, path: Path) -> None:
    """Raise DatasetError if any label is outside 0..num_classes-1."""
    if labels.size and int(labels.max()) >= num_classes:
        raise DatasetError(
            f"{path}: label {int(labels.max())} out of range: expected 0..{num_classes - 1}")


# --------------------------------------------------------------------------
# CIFAR-10
# --------------------------------------------------------------------------

_CIFAR_RECORD = 1 + 3 * 32 * 32  # label byte + R, G, B planes
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = "test_batch"
_CIFAR_EXPECTED = ("expected cifar-10-batches-bin/ (data_batch_1.bin..data_batch_5.bin, "
                   "test_batch.bin) or cifar-10-batches-py/ (data_batch_1..data_batch_5, "
                   "test_batch)")


def _find_cifar10(root: Path) -> tuple[Path, str]:
    """Locate the CIFAR-10 batch folder; return (folder, "bin" | "py").

    ``root`` may be the batch folder itself or a folder containing
    ``cifar-10-batches-bin`` or ``cifar-10-batches-py``.
    """
    if not root.is_dir():
        raise DatasetError(f"CIFAR-10 not found in {root}: no such directory; {_CIFAR_EXPECTED}")
    for folder in (root, root / "cifar-10-batches-bin", root / "cifar-10-batches-py"):
        if (folder / "data_batch_1.bin").is_file() or (folder / "test_batch.bin").is_file():
            return folder, "bin"
        if (folder / "data_batch_1").is_file() or (folder / "test_batch").is_file():
            return folder, "py"
    raise DatasetError(f"CIFAR-10 not found in {root}: {_CIFAR_EXPECTED}")


def _load_cifar10(root: Path) -> tuple[_Split, _Split, list[Path]]:
    """Read the five training batches and the test batch, in official order."""
    folder, layout = _find_cifar10(root)
    suffix, reader = (".bin", _read_cifar_bin) if layout == "bin" else ("", _read_cifar_pickle)
    paths = [folder / (stem + suffix) for stem in (*_CIFAR_TRAIN, _CIFAR_TEST)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DatasetError(
            f"CIFAR-10 in {folder} is incomplete: missing {', '.join(missing)}; {_CIFAR_EXPECTED}")
    batches = [reader(p) for p in paths]
    train_images = np.concatenate([b[0] for b in batches[:-1]])
    train_labels = np.concatenate([b[1] for b in batches[:-1]])
    return (train_images, train_labels), batches[-1], paths


def _read_cifar_bin(path: Path) -> _Split:
    """Parse one binary batch: records of 1 label byte + 3072 pixel bytes."""
    buf = _read_bytes(path)
    if len(buf) == 0 or len(buf) % _CIFAR_RECORD:
        n = max(1, round(len(buf) / _CIFAR_RECORD))
        raise DatasetError(
            f"{path}: malformed CIFAR-10 batch: expected a non-zero multiple of {_CIFAR_RECORD} "
            f"bytes (1 label byte + 3072 pixel bytes per record, e.g. {n * _CIFAR_RECORD} "
            f"for {n} records), got {len(buf)} bytes")
    records = np.frombuffer(buf, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = records[:, 0].copy()
    _check_labels(labels, 10, path)
    images = np.ascontiguousarray(records[:, 1:]).reshape(-1, 3, 32, 32)
    return images, labels


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can only rebuild numpy arrays and dtypes.

    ``find_class`` is the only way a pickle can reach Python callables, so
    refusing every global except numpy's array reconstruction functions
    prevents a tampered file from running code (e.g. ``os.system``).
    """

    def find_class(self, module: str, name: str) -> Any:
        """Return an allowed numpy global, or raise DatasetError."""
        factory = _ALLOWED_GLOBALS.get((module, name))
        if factory is None:
            raise DatasetError(
                f"refusing to load {module}.{name} from a CIFAR-10 pickle: "
                "only numpy arrays are allowed")
        return factory()


def _multiarray_reconstruct() -> Callable[..., Any]:
    """numpy's ndarray reconstructor, under numpy 1.x or 2.x."""
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _numeric_frombuffer() -> Callable[..., Any]:
    """numpy's protocol-5 array reconstructor (a wrapper of np.frombuffer)."""
    try:
        from numpy._core.numeric import _frombuffer  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.numeric import _frombuffer
    return _frombuffer


_ALLOWED_GLOBALS: dict[tuple[str, str], Callable[[], Any]] = {
    ("numpy.core.multiarray", "_reconstruct"): _multiarray_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray_reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _numeric_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _numeric_frombuffer,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
}


def _unpickle(path: Path) -> Any:
    """Unpickle ``path`` with :class:`_NumpyOnlyUnpickler` (python-2 pickles as bytes)."""
    try:
        with open(path, "rb") as f:
            return _NumpyOnlyUnpickler(f, encoding="bytes").load()
    except DatasetError as exc:
        raise DatasetError(f"{path}: {exc}") from None
    except Exception as exc:  # any parse failure of untrusted data is a bad file
        raise DatasetError(f"{path}: not a valid CIFAR-10 python batch: {exc!r}") from None


def _dict_get(d: dict, key: str) -> Any:
    """Fetch ``key`` from a batch dict whose keys may be bytes or str."""
    if key.encode() in d:
        return d[key.encode()]
    return d.get(key)


def _read_cifar_pickle(path: Path) -> _Split:
    """Parse one python-layout batch: a dict with b'data' (N x 3072) and b'labels'."""
    batch = _unpickle(path)
    data = _dict_get(batch, "data") if isinstance(batch, dict) else None
    labels = _dict_get(batch, "labels") if isinstance(batch, dict) else None
    if not isinstance(data, np.ndarray) or labels is None:
        raise DatasetError(
            f"{path}: malformed CIFAR-10 python batch: expected a dict with b'data' "
            "(an N x 3072 uint8 array) and b'labels'")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DatasetError(
            f"{path}: malformed CIFAR-10 python batch: expected b'data' of shape (N, 3072) "
            f"uint8, got {data.shape} {data.dtype}")
    try:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise DatasetError(f"{path}: malformed CIFAR-10 python batch: b'labels' "
                           "is not a list of integers") from None
    if labels.shape[0] != data.shape[0]:
        raise DatasetError(
            f"{path}: malformed CIFAR-10 python batch: expected {data.shape[0]} labels "
            f"(one per image), got {labels.shape[0]}")
    if labels.size and int(labels.min()) < 0:
        raise DatasetError(f"{path}: negative label {int(labels.min())}: expected 0..9")
    _check_labels(labels, 10, path)
    images = np.ascontiguousarray(data).reshape(-1, 3, 32, 32)
    if not images.flags.writeable:
        images = images.copy()
    return images, labels.astype(np.uint8)


# --------------------------------------------------------------------------
# MNIST-style idx files
# --------------------------------------------------------------------------

_IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions
_IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _find_idx_file(root: Path, stem: str, title: str) -> Path:
    """Return ``root/stem`` or ``root/stem.gz``, or raise DatasetError."""
    for path in (root / stem, root / f"{stem}.gz"):
        if path.is_file():
            return path
    raise DatasetError(
        f"{title} not found in {root}: missing {stem} (or {stem}.gz); expected the idx files "
        f"{', '.join(_IDX_FILES)}, raw or .gz")


def _load_idx_dataset(root: Path, spec: _Spec) -> tuple[_Split, _Split, list[Path]]:
    """Read the train and test splits of an MNIST-style dataset."""
    if not root.is_dir():
        raise DatasetError(
            f"{spec.title} not found in {root}: no such directory; expected the idx files "
            f"{', '.join(_IDX_FILES)}, raw or .gz")
    paths = [_find_idx_file(root, stem, spec.title) for stem in _IDX_FILES]
    splits = []
    for images_path, labels_path in (paths[0:2], paths[2:4]):
        images = _read_idx(images_path, _IDX_IMAGES_MAGIC, spec.shape[1:])
        labels = _read_idx(labels_path, _IDX_LABELS_MAGIC, ())
        if len(images) != len(labels):
            raise DatasetError(
                f"{labels_path}: expected {len(images)} labels (as many as images in "
                f"{images_path.name}), got {len(labels)}")
        _check_labels(labels, len(spec.classes), labels_path)
        splits.append((images.reshape(-1, *spec.shape), labels))
    return splits[0], splits[1], paths


def _read_idx(path: Path, magic: int, item_shape: tuple[int, ...]) -> np.ndarray:
    """Parse an unsigned-byte idx file of shape (N, *item_shape).

    Header: big-endian int32 magic, then one big-endian int32 per dimension;
    the data (N * prod(item_shape) bytes) follows.
    """
    buf = _read_bytes(path)
    what = "decompressed size" if path.suffix == ".gz" else "size"
    header_len = 4 * (2 + len(item_shape))
    if len(buf) < header_len:
        raise DatasetError(f"{path}: truncated idx file: expected at least a {header_len}-byte "
                           f"header, got {len(buf)} bytes ({what})")
    header = np.frombuffer(buf, dtype=">u4", count=header_len // 4)
    if int(header[0]) != magic:
        raise DatasetError(f"{path}: bad idx magic number: expected {magic}, got {int(header[0])}")
    dims = tuple(int(d) for d in header[2:])
    if dims != tuple(item_shape):
        raise DatasetError(f"{path}: expected items of shape {item_shape}, got {dims}")
    count = int(header[1])
    expected = header_len + count * int(np.prod(item_shape, dtype=np.int64))
    if len(buf) != expected:
        raise DatasetError(f"{path}: malformed idx file: expected {expected} bytes for {count} "
                           f"items, got {len(buf)} bytes ({what})")
    return np.frombuffer(buf, dtype=np.uint8, offset=header_len).reshape(count, *item_shape)
