"""The host side of the link (:mod:`hwgen.boards.protocol`): read an image, send it to the board, check the reply.

* :func:`load_image`: a PNG / JPEG / any Pillow format, or a ``.npy`` uint8
  array, to the accelerator's uint8 (C, H, W): 1 channel -> grayscale
  (Pillow's ``L``: ITU-R 601-2 luma), 3 -> RGB; other sizes resized with
  bilinear filtering (aspect ratio not kept) unless ``resize=False``;
  optionally inverted (``255 - x``: a dark digit on white paper -> MNIST's
  white on black). Every conversion is reported as a note.
* :func:`open_port`: a pyserial port; :class:`BoardLink`: identify and
  classify over any object with pyserial's ``write``, ``read`` (returns
  fewer bytes on a timeout), ``reset_input_buffer`` and ``close``, retrying
  a request that got no or a corrupted reply.
* :func:`run_on_board`: what ``hwgen run`` does: read the image (with a
  build folder; else check the file is readable) before opening the port,
  identify the board (and check it runs the build folder's design),
  classify, and compare with the golden model on the build folder's
  ``net.hwir``; :func:`run_golden`: the golden model's answer alone, no
  board (``hwgen run --golden``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from hwgen.boards.protocol import (
    IDENT_BYTES,
    REQUEST_IDENTIFY,
    Ident,
    classify_request,
    decode_reply,
    reply_bytes,
)
from hwgen.errors import BoardError

__all__ = ["DEFAULT_RETRIES", "DEFAULT_TIMEOUT_S", "BoardLink", "RunResult", "SerialPort", "golden_answer",
           "load_image", "open_port", "run_golden", "run_on_board"]

DEFAULT_TIMEOUT_S = 2.0
DEFAULT_RETRIES = 2


class SerialPort(Protocol):
    """What :class:`BoardLink` needs of a serial port (pyserial's ``Serial`` has it)."""

    def write(self, data: bytes) -> int | None: ...
    def read(self, size: int) -> bytes: ...
    def reset_input_buffer(self) -> None: ...
    def close(self) -> None: ...


def load_image(path: str | Path, shape: tuple[int, int, int], *, resize: bool = True,
               invert: bool = False) -> tuple[np.ndarray, list[str]]:
    """(uint8 (C, H, W) image, notes on what was converted) from ``path`` for an accelerator input ``shape``.

    BoardError for a missing or unreadable file, a channel count a picture
    cannot give (only 1 and 3), a ``.npy`` of another shape or type, or a
    picture of another size with ``resize=False``.
    """
    path = Path(path)
    c, h, w = shape
    notes: list[str] = []
    if not path.is_file():
        raise BoardError(f"image {path} does not exist")
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise BoardError(f"{path} is not a readable .npy array: {exc}") from None
        if array.dtype != np.uint8:
            raise BoardError(f"{path} holds {array.dtype} values; the accelerator takes uint8 (C, H, W) = {shape}")
        if array.ndim == 2 and c == 1:
            array = array[None]
        if tuple(array.shape) != tuple(shape):
            raise BoardError(f"{path} has shape {tuple(array.shape)}, but the accelerator takes (C, H, W) = {shape}")
    else:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                img.load()
                picture = img
        except (UnidentifiedImageError, OSError) as exc:
            raise BoardError(f"{path} is not an image Pillow can read: {exc}") from None
        if c not in (1, 3):
            raise BoardError(f"the accelerator takes {c}-channel images and a picture gives 1 (grayscale) or 3 "
                             f"(RGB): pass a .npy uint8 array of shape {shape}")
        mode = "L" if c == 1 else "RGB"
        if picture.mode != mode:
            notes.append(f"converted {picture.mode} to {'grayscale (luma)' if c == 1 else 'RGB'}")
            picture = picture.convert(mode)
        if picture.size != (w, h):
            if not resize:
                raise BoardError(f"{path} is {picture.size[0]}x{picture.size[1]} pixels, but the accelerator takes "
                                 f"{w}x{h} (drop --no-resize to resize it)")
            notes.append(f"resized {picture.size[0]}x{picture.size[1]} -> {w}x{h} (bilinear, aspect ratio not kept)")
            picture = picture.resize((w, h), Image.Resampling.BILINEAR)
        array = np.asarray(picture, dtype=np.uint8)
        array = array[None] if c == 1 else array.transpose(2, 0, 1)
    if invert:
        array = 255 - array
        notes.append("inverted (255 - x)")
    return np.ascontiguousarray(array, dtype=np.uint8), notes


def open_port(port: str, baud: int, timeout_s: float) -> SerialPort:
    """A pyserial port at ``baud`` 8N1 whose reads give up after ``timeout_s``; BoardError when it cannot be opened."""
    try:
        import serial
    except ImportError:
        raise BoardError("hwgen run needs pyserial: pip install pyserial") from None
    try:
        return serial.Serial(port, baudrate=baud, timeout=timeout_s, write_timeout=timeout_s)
    except (serial.SerialException, ValueError, OSError) as exc:
        raise BoardError(f"cannot open serial port {port} at {baud:,} baud: {exc}") from None


class BoardLink:
    """Requests to a board over ``port`` (see the module docstring); ``name`` and ``baud`` go into messages."""

    def __init__(self, port: SerialPort, *, name: str = "the serial port", baud: int | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, retries: int = DEFAULT_RETRIES) -> None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise BoardError(f"retries must be a non-negative integer, not {retries!r}")
        self.port = port
        self.name = name
        self.baud = baud
        self.timeout_s = timeout_s
        self.retries = retries
        self.attempts = 0  # requests sent by the last call

    def _exchange(self, request: bytes, n: int) -> bytes:
        self.port.reset_input_buffer()
        self.port.write(request)
        return bytes(self.port.read(n))

    def _no_reply(self, what: str, got: int, n: int) -> BoardError:
        baud = f" at {self.baud:,} baud" if self.baud else ""
        return BoardError(f"no {what} reply from the board on {self.name} within {self.timeout_s:g} s (got {got} of "
                          f"{n} bytes, {self.attempts} attempt{'s' * (self.attempts > 1)}): is the bitstream loaded "
                          f"(hwgen synth --board), the port right and the baud rate{baud} the board's?")

    def identify(self) -> Ident:
        """The board's :class:`Ident`; BoardError on no reply or one that is not an identify reply."""
        got = b""
        for attempt in range(1, self.retries + 2):
            self.attempts = attempt
            got = self._exchange(bytes([REQUEST_IDENTIFY]), IDENT_BYTES)
            if len(got) == IDENT_BYTES:
                return Ident.unpack(got)
        raise self._no_reply("identify", len(got), IDENT_BYTES)

    def classify(self, image: np.ndarray, num_classes: int) -> tuple[np.ndarray, int]:
        """(int64 scores, class) for a uint8 (C, H, W) image; retries a missing, short or corrupted reply."""
        request = classify_request(image)
        n = reply_bytes(num_classes)
        got, error = b"", None
        for attempt in range(1, self.retries + 2):
            self.attempts = attempt
            got = self._exchange(request, n)
            if len(got) == n:
                try:
                    return decode_reply(got, num_classes)
                except BoardError as exc:
                    error = exc
        if error is not None and len(got) == n:
            raise BoardError(f"{error} ({self.attempts} attempts)")
        raise self._no_reply("classify", len(got), n)


@dataclass
class RunResult:
    """One ``hwgen run``: what the board said, what the golden model says, and how long it took."""

    ident: Ident
    image: np.ndarray
    notes: list[str]
    scores: np.ndarray
    cls: int
    seconds: float
    attempts: int
    golden_scores: np.ndarray | None = None
    golden_cls: int | None = None
    build_checked: bool = False
    messages: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool | None:
        """Board == golden model (class and every score); None without a build folder."""
        if self.golden_scores is None:
            return None
        return self.cls == self.golden_cls and np.array_equal(self.scores, self.golden_scores)


def run_on_board(port: str, image_path: str | Path, *, build_dir: str | Path | None = None,
                 baud: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S, retries: int = DEFAULT_RETRIES,
                 resize: bool = True, invert: bool = False,
                 open_fn: Callable[[str, int, float], SerialPort] | None = None) -> RunResult:
    """Identify the board on ``port``, classify the image, compare with the build folder's golden model.

    ``baud``: default the build folder's ``board.json`` (else 1,000,000).
    ``open_fn``: opens the port (default :func:`open_port`; tests pass a fake board). BoardError when the
    board runs another design than ``build_dir``'s (shape, classes or design
    id differ), and for every failure of :func:`load_image` and :class:`BoardLink`.
    """
    from hwgen.boards.generate import DEFAULT_BAUD, read_board_info, read_ident

    expected, image, notes = None, None, []
    if build_dir is not None:
        expected = read_ident(build_dir)
        info = read_board_info(build_dir)
        if baud is None and info is not None:
            baud = int(info["baud"])
        image, notes = load_image(image_path, expected.input_shape, resize=resize, invert=invert)  # before the port
    else:
        _check_readable(image_path)
    baud = DEFAULT_BAUD if baud is None else baud
    if not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
        raise BoardError(f"--timeout must be a positive number of seconds, not {timeout_s!r}")
    handle = (open_fn or open_port)(port, baud, timeout_s)
    try:
        link = BoardLink(handle, name=port, baud=baud, timeout_s=timeout_s, retries=retries)
        ident = link.identify()
        if expected is not None and ident != expected:
            raise BoardError(f"the board on {port} runs another design: input {_shape(ident)}, {ident.num_classes} "
                             f"classes, design id {ident.design.hex()}; {build_dir} has input {_shape(expected)}, "
                             f"{expected.num_classes} classes, design id {expected.design.hex()} (load its "
                             f"bitstream, or pass the build folder the board was built from)")
        if image is None:
            image, notes = load_image(image_path, ident.input_shape, resize=resize, invert=invert)
        t0 = time.perf_counter()
        scores, cls = link.classify(image, ident.num_classes)
        seconds = time.perf_counter() - t0
    finally:
        handle.close()
    result = RunResult(ident, image, notes, scores, cls, seconds, link.attempts, build_checked=expected is not None)
    if build_dir is not None:
        result.golden_scores, result.golden_cls = golden_answer(build_dir, image)
    return result


def _check_readable(image_path: str | Path) -> None:
    """BoardError unless ``image_path`` is a readable file (checked before a port is opened)."""
    path = Path(image_path)
    if not path.is_file():
        raise BoardError(f"image {path} does not exist")
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise BoardError(f"image {path} cannot be read: {exc.strerror or exc}") from None


def golden_answer(build_dir: str | Path, image: np.ndarray) -> tuple[np.ndarray, int]:
    """(scores, class) of the build folder's golden model (its ``net.hwir``) for one uint8 (C, H, W) image."""
    from hwgen.compile.artifact import load_network
    from hwgen.compile.golden import run_network

    golden = run_network(load_network(Path(build_dir) / "net.hwir"), image[None])
    return golden.scores[0], int(golden.predictions[0])


def run_golden(image_path: str | Path, build_dir: str | Path, *, resize: bool = True,
               invert: bool = False) -> tuple[np.ndarray, list[str], np.ndarray, int]:
    """What ``hwgen run --golden`` answers without a board: (image, notes, scores, class) from ``net.hwir``."""
    from hwgen.boards.generate import read_ident

    ident = read_ident(build_dir)
    image, notes = load_image(image_path, ident.input_shape, resize=resize, invert=invert)
    scores, cls = golden_answer(build_dir, image)
    return image, notes, scores, cls


def _shape(ident: Ident) -> str:
    return "x".join(map(str, ident.input_shape))
