"""Tests for hwgen.data.datasets: standard formats, safety, errors, real data."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from hwgen.data.datasets import DATASET_NAMES, Dataset, dataset_shape, load_dataset
from hwgen.errors import DatasetError
from synthetic import IDX_NAMES, idx_bytes, write_idx_files

CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


# ---------------------------------------------------------------- writers

def cifar_records(n: int, seed: int) -> np.ndarray:
    """Random CIFAR-10 records (n, 3073): label byte then R, G, B planes."""
    rng = np.random.default_rng(seed)
    rec = rng.integers(0, 256, (n, 3073), dtype=np.uint8)
    rec[:, 0] = rng.integers(0, 10, n)
    return rec


def write_cifar_bin(root: Path, n: int = 3) -> dict[str, np.ndarray]:
    """Write a tiny ``cifar-10-batches-bin/`` (n records per batch); return the records."""
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    records = {}
    for i, stem in enumerate([*CIFAR_TRAIN, "test_batch"]):
        records[stem] = cifar_records(n, seed=i)
        records[stem].tofile(folder / f"{stem}.bin")
    return records


class _Py2StylePickler(pickle._Pickler):
    """Writes bytes as python-2 ``str`` opcodes, like the official CIFAR-10 pickles.

    A python-3 pickler at protocol 2 would instead encode bytes as calls to
    ``_codecs.encode``, which the safe loader (rightly) refuses.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def dump_py2_style(obj: object, f) -> None:
    """Pickle ``obj`` as python 2 + numpy 1 would (protocol 2, numpy.core names)."""
    buf = io.BytesIO()
    _Py2StylePickler(buf, protocol=2).dump(obj)
    f.write(buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"))


def write_cifar_py(root: Path, n: int = 3, protocol: int | str = "py2",
                   str_keys: bool = False) -> dict[str, np.ndarray]:
    """Write a tiny ``cifar-10-batches-py/`` of pickled dicts; return the records.

    ``protocol="py2"`` mimics the official files (see :func:`dump_py2_style`).
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    records = {}
    for i, stem in enumerate([*CIFAR_TRAIN, "test_batch"]):
        rec = records[stem] = cifar_records(n, seed=i)
        batch = {b"batch_label": b"synthetic", b"labels": [int(x) for x in rec[:, 0]],
                 b"data": np.ascontiguousarray(rec[:, 1:]),
                 b"filenames": [b"x.png"] * n}
        if str_keys:
            batch = {k.decode(): v for k, v in batch.items()}
        with open(folder / stem, "wb") as f:
            if protocol == "py2":
                dump_py2_style(batch, f)
            else:
                pickle.dump(batch, f, protocol=protocol)
    return records


def write_idx(root: Path, gz: bool, n_train: int = 4, n_test: int = 2) -> dict[str, np.ndarray]:
    """Write the four MNIST idx files (raw or .gz) with random content."""
    rng = np.random.default_rng(0)
    arrays = {
        IDX_NAMES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        IDX_NAMES[1]: rng.integers(0, 10, n_train, dtype=np.uint8),
        IDX_NAMES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        IDX_NAMES[3]: rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    write_idx_files(root, arrays, gz=gz)
    return arrays


def check_cifar(ds: Dataset, records: dict[str, np.ndarray], n: int) -> None:
    """Check a loaded synthetic CIFAR-10 against its records, pixel by pixel."""
    assert ds.train_images.shape == (5 * n, 3, 32, 32)
    assert ds.test_images.shape == (n, 3, 32, 32)
    assert ds.train_images.dtype == torch.uint8 and ds.train_labels.dtype == torch.int64
    assert ds.train_images.is_contiguous() and ds.test_images.is_contiguous()
    # Known pixel: channel c, row y, column x sits at byte 1 + c*1024 + y*32 + x.
    rec = records["data_batch_2"]
    for c, y, x in [(0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 2, 5), (2, 31, 30)]:
        assert ds.train_images[n + 1, c, y, x] == rec[1, 1 + c * 1024 + y * 32 + x]
    train = np.concatenate([records[s] for s in CIFAR_TRAIN])
    assert np.array_equal(ds.train_images.numpy().reshape(5 * n, -1), train[:, 1:])
    assert np.array_equal(ds.train_labels.numpy(), train[:, 0])
    assert np.array_equal(ds.test_labels.numpy(), records["test_batch"][:, 0])
    assert ds.num_classes == 10 and ds.classes[0] == "airplane"
    assert len(ds.mean) == len(ds.std) == 3


# ---------------------------------------------------------------- formats

def test_cifar_bin_layout(tmp_path: Path) -> None:
    records = write_cifar_bin(tmp_path)
    for where in (tmp_path, tmp_path / "cifar-10-batches-bin"):
        check_cifar(load_dataset("cifar10", where), records, 3)


def test_cifar_bin_known_pixel_is_red_plane_row_major(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for stem in [*CIFAR_TRAIN, "test_batch"]:
        rec = np.zeros((1, 3073), np.uint8)
        rec[0, 0] = 7
        rec[0, 1 + 0 * 1024 + 3 * 32 + 5] = 200   # R, row 3, col 5
        rec[0, 1 + 2 * 1024 + 31 * 32 + 0] = 99   # B, row 31, col 0
        rec.tofile(folder / f"{stem}.bin")
    ds = load_dataset("cifar10", tmp_path)
    img = ds.test_images[0]
    assert img[0, 3, 5] == 200 and img[2, 31, 0] == 99 and int(img.sum()) == 299
    assert ds.test_labels.tolist() == [7]


@pytest.mark.parametrize("protocol,str_keys", [("py2", False), (3, False), (4, True), (5, False)])
def test_cifar_python_layout(tmp_path: Path, protocol: int | str, str_keys: bool) -> None:
    records = write_cifar_py(tmp_path, protocol=protocol, str_keys=str_keys)
    for where in (tmp_path, tmp_path / "cifar-10-batches-py"):
        check_cifar(load_dataset("cifar10", where), records, 3)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_layout(tmp_path: Path, gz: bool) -> None:
    arrays = write_idx(tmp_path, gz)
    ds = load_dataset("mnist", tmp_path)
    assert ds.train_images.shape == (4, 1, 28, 28) and ds.test_images.shape == (2, 1, 28, 28)
    assert ds.train_images.dtype == torch.uint8 and ds.test_labels.dtype == torch.int64
    assert ds.train_images[1, 0, 3, 4] == arrays[IDX_NAMES[0]][1, 3, 4]
    assert np.array_equal(ds.train_images.numpy()[:, 0], arrays[IDX_NAMES[0]])
    assert np.array_equal(ds.test_labels.numpy(), arrays[IDX_NAMES[3]])
    assert ds.mean == (0.1307,) and ds.classes[9] == "9"


def test_fashion_mnist_uses_same_format(tmp_path: Path) -> None:
    write_idx(tmp_path, gz=True)
    ds = load_dataset("fashion_mnist", tmp_path)
    assert ds.name == "fashion_mnist" and ds.classes[-1] == "Ankle boot"
    assert "fashion_mnist" in repr(ds)


def test_dataset_shape_and_names() -> None:
    assert DATASET_NAMES == ("cifar10", "mnist", "fashion_mnist")
    assert dataset_shape("cifar10") == (3, 32, 32)
    assert dataset_shape("mnist") == dataset_shape("fashion_mnist") == (1, 28, 28)
    with pytest.raises(DatasetError, match="cifar10, mnist, fashion_mnist"):
        dataset_shape("imagenet")
    with pytest.raises(DatasetError, match="imagenet"):
        load_dataset("imagenet", "/nonexistent")


# ---------------------------------------------------------------- safety

class _RunsCommand:
    """Pickles to a call of os.system when unpickled by a plain unpickler."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Evals:
    """Pickles to a call of builtins.eval."""

    def __reduce__(self):
        return (eval, ("1 + 1",))


@pytest.mark.parametrize("where", ["whole", "labels"])
def test_malicious_pickle_is_refused(tmp_path: Path, where: str) -> None:
    write_cifar_py(tmp_path)
    marker = tmp_path / "pwned"
    payload = _RunsCommand(marker)
    if where == "labels":
        payload = {b"data": np.zeros((1, 3072), np.uint8), b"labels": [payload]}
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_3", "wb") as f:
        dump_py2_style(payload, f)
    with pytest.raises(DatasetError, match="data_batch_3") as info:
        load_dataset("cifar10", tmp_path)
    assert "system" in str(info.value)
    assert not marker.exists()


def test_pickle_with_eval_is_refused(tmp_path: Path) -> None:
    write_cifar_py(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({b"data": _Evals(), b"labels": []}, f)
    with pytest.raises(DatasetError, match="eval"):
        load_dataset("cifar10", tmp_path)


def test_garbage_pickle_is_dataset_error(tmp_path: Path) -> None:
    write_cifar_py(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"\x80\x02not a pickle")
    with pytest.raises(DatasetError, match="test_batch"):
        load_dataset("cifar10", tmp_path)


# ---------------------------------------------------------------- errors

def test_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(DatasetError, match="cifar-10-batches-bin") as info:
        load_dataset("cifar10", missing)
    assert str(missing) in str(info.value)
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte") as info:
        load_dataset("mnist", missing)
    assert str(missing) in str(info.value)


def test_cifar_not_found_in_empty_dir(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="CIFAR-10 not found in .*cifar-10-batches-py"):
        load_dataset("cifar10", tmp_path)


def test_cifar_missing_file(tmp_path: Path) -> None:
    write_cifar_bin(tmp_path)
    (tmp_path / "cifar-10-batches-bin" / "data_batch_4.bin").unlink()
    with pytest.raises(DatasetError, match="data_batch_4.bin"):
        load_dataset("cifar10", tmp_path)


def test_cifar_truncated_file(tmp_path: Path) -> None:
    write_cifar_bin(tmp_path)
    path = tmp_path / "cifar-10-batches-bin" / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError, match=r"test_batch\.bin.*3073.*got 9119 bytes"):
        load_dataset("cifar10", tmp_path)


def test_cifar_bad_label(tmp_path: Path) -> None:
    write_cifar_bin(tmp_path)
    path = tmp_path / "cifar-10-batches-bin" / "data_batch_1.bin"
    data = bytearray(path.read_bytes())
    data[0] = 12
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="data_batch_1.bin.*label 12"):
        load_dataset("cifar10", tmp_path)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_missing_file(tmp_path: Path, gz: bool) -> None:
    write_idx(tmp_path, gz)
    name = IDX_NAMES[3] + (".gz" if gz else "")
    (tmp_path / name).unlink()
    with pytest.raises(DatasetError, match=IDX_NAMES[3]):
        load_dataset("mnist", tmp_path)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated_file(tmp_path: Path, gz: bool) -> None:
    arrays = write_idx(tmp_path, gz=False)
    data = idx_bytes(2051, arrays[IDX_NAMES[0]])[:-10]
    (tmp_path / IDX_NAMES[0]).unlink()
    target = tmp_path / (IDX_NAMES[0] + (".gz" if gz else ""))
    target.write_bytes(gzip.compress(data) if gz else data)
    expected, actual = 16 + 4 * 784, 16 + 4 * 784 - 10
    with pytest.raises(DatasetError,
                       match=rf"{IDX_NAMES[0]}.*expected {expected} bytes.*got {actual}"):
        load_dataset("mnist", tmp_path)


def test_idx_cut_gzip_stream(tmp_path: Path) -> None:
    write_idx(tmp_path, gz=True)
    path = tmp_path / f"{IDX_NAMES[2]}.gz"
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DatasetError, match=IDX_NAMES[2]):
        load_dataset("mnist", tmp_path)


def test_idx_bad_magic(tmp_path: Path) -> None:
    arrays = write_idx(tmp_path, gz=False)
    (tmp_path / IDX_NAMES[1]).write_bytes(idx_bytes(2051, arrays[IDX_NAMES[1]]))
    with pytest.raises(DatasetError, match=rf"{IDX_NAMES[1]}.*magic.*expected 2049, got 2051"):
        load_dataset("mnist", tmp_path)


def test_idx_wrong_image_size(tmp_path: Path) -> None:
    write_idx(tmp_path, gz=False)
    (tmp_path / IDX_NAMES[2]).write_bytes(idx_bytes(2051, np.zeros((2, 32, 32), np.uint8)))
    with pytest.raises(DatasetError, match=rf"{IDX_NAMES[2]}.*\(28, 28\).*\(32, 32\)"):
        load_dataset("mnist", tmp_path)


def test_idx_label_count_mismatch(tmp_path: Path) -> None:
    write_idx(tmp_path, gz=False)
    (tmp_path / IDX_NAMES[3]).write_bytes(idx_bytes(2049, np.zeros(3, np.uint8)))
    with pytest.raises(DatasetError, match=rf"{IDX_NAMES[3]}.*expected 2 labels"):
        load_dataset("mnist", tmp_path)


# ---------------------------------------------------------------- real data

def _check_real_mnist_like(ds: Dataset) -> None:
    """Official split sizes, shapes and label range of an MNIST-style set."""
    assert ds.train_images.shape == (60000, 1, 28, 28)
    assert ds.test_images.shape == (10000, 1, 28, 28)
    assert ds.train_labels.shape == (60000,) and ds.test_labels.shape == (10000,)
    for labels in (ds.train_labels, ds.test_labels):
        assert labels.min() == 0 and labels.max() == 9
        assert torch.bincount(labels).min() > 800
    mean = ds.train_images.float().mean().item() / 255
    assert abs(mean - ds.mean[0]) < 0.01


def test_real_mnist(mnist_dir: Path) -> None:
    _check_real_mnist_like(load_dataset("mnist", mnist_dir))


def test_real_fashion_mnist(fashion_mnist_dir: Path) -> None:
    _check_real_mnist_like(load_dataset("fashion_mnist", fashion_mnist_dir))


def test_real_cifar10(cifar10_dir: Path) -> None:
    ds = load_dataset("cifar10", cifar10_dir)
    assert ds.train_images.shape == (50000, 3, 32, 32)
    assert ds.test_images.shape == (10000, 3, 32, 32)
    assert torch.equal(torch.bincount(ds.train_labels), torch.full((10,), 5000))
    assert torch.equal(torch.bincount(ds.test_labels), torch.full((10,), 1000))
    # The JPEG copy keeps the per-channel means within 0.05 of the official ones.
    means = ds.train_images[:5000].float().mean(dim=(0, 2, 3)) / 255
    assert torch.allclose(means, torch.tensor(ds.mean), atol=0.05)
    _check_against_jpeg(ds)


def _check_against_jpeg(ds: Dataset) -> None:
    """Test image 0 equals its JPEG source (R, G, B planes, row-major)."""
    pil = pytest.importorskip("PIL.Image")
    zip_path = Path(__file__).resolve().parent.parent.parent / "shared/data/cifar10-jpeg.zip"
    if not zip_path.is_file():
        return
    label = int(ds.test_labels[0])
    with zipfile.ZipFile(zip_path) as zf:
        data = zf.read(f"cifar10-jpeg/test/{ds.classes[label]}/00000.jpg")
    pixels = np.asarray(pil.open(io.BytesIO(data)).convert("RGB"))  # (H, W, RGB)
    assert np.array_equal(ds.test_images[0].numpy(), pixels.transpose(2, 0, 1))
