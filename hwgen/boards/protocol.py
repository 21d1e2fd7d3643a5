"""The host link protocol over the board's UART (8 data bits, no parity, 1 stop bit; the baud rate is the board's).

Host to board, one request at a time (wait for the reply before sending the next):

``0xA5`` + C*H*W image bytes: classify
    The uint8 image (C, H, W) in the accelerator's input order (y, x, c),
    channel fastest, behind the sync byte :data:`REQUEST_CLASSIFY`. The board
    stores the whole frame, then streams it into the accelerator.
``0x3F`` (``?``): identify
    The board answers with :data:`IDENT_BYTES` bytes (:class:`Ident`).

Any other byte while the board waits for a request is ignored. Inside a frame
every byte value is data; a gap longer than the board's frame timeout (20 ms
by default, ``board.json``) between two bytes of a frame discards the partial
frame, so a byte lost on the line costs that one request (no reply: the host
times out and sends it again) and the next request is received intact.

Board to host:

classify reply, ``4 * (num_classes + 1)`` bytes
    The accelerator's output words, each 32-bit little-endian: the class
    scores (two's complement), then the class index (unsigned).
identify reply, 16 bytes (:class:`Ident`)
    ``b"hwgn"``, protocol version (u8, :data:`PROTOCOL_VERSION`), C (u8),
    H (u16), W (u16), num_classes (u16), then the design id: the first 4
    bytes of a SHA-256 of the build folder's ``net.hwir`` content
    (:func:`design_id`). Integers are little-endian.

This module is plain Python (no hardware): the host (:mod:`hwgen.boards.host`)
and the board top's constants (:mod:`hwgen.boards.link`) both come from it.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwgen.errors import BoardError

__all__ = ["IDENT_BYTES", "IDENT_MAGIC", "PROTOCOL_VERSION", "REQUEST_CLASSIFY", "REQUEST_IDENTIFY", "WORD_BYTES",
           "Ident", "classify_request", "decode_reply", "design_id", "encode_reply", "reply_bytes"]

REQUEST_CLASSIFY = 0xA5
REQUEST_IDENTIFY = 0x3F
IDENT_MAGIC = b"hwgn"
PROTOCOL_VERSION = 1
IDENT_BYTES = 16
WORD_BYTES = 4
_IDENT = struct.Struct("<4sBBHHH4s")
assert _IDENT.size == IDENT_BYTES


def design_id(hwir: str | Path) -> bytes:
    """4 bytes naming an IR file's network (the board reports them in its :class:`Ident`).

    The first 4 bytes of the SHA-256 of the IR's ``network`` structure (JSON)
    and its ``sha256`` over every array, both from the file's metadata: the
    same network gives the same id whatever the file's bytes (safetensors
    writes the metadata in a different order in every process).
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(hwir), framework="numpy") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise BoardError(f"{hwir} is not a readable hwgen IR file: {exc}") from None
    if "network" not in meta or "sha256" not in meta:
        raise BoardError(f"{hwir} is not a hwgen IR file (no network structure or array digest in its metadata)")
    return hashlib.sha256(f"{meta['network']}|{meta['sha256']}".encode()).digest()[:4]


@dataclass(frozen=True)
class Ident:
    """What a board's identify reply says: the input shape, the number of classes, the design id."""

    channels: int
    height: int
    width: int
    num_classes: int
    design: bytes  # 4 bytes, see design_id()

    def __post_init__(self) -> None:
        limits = (("channels", self.channels, 255), ("height", self.height, 65535), ("width", self.width, 65535),
                  ("num_classes", self.num_classes, 65535))
        for name, value, top in limits:
            if not isinstance(value, int) or not 1 <= value <= top:
                raise BoardError(f"{name} must be an integer in 1..{top} for the host link, not {value!r}")
        if not isinstance(self.design, bytes) or len(self.design) != 4:
            raise BoardError(f"the design id must be 4 bytes, not {self.design!r}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    @property
    def frame_bytes(self) -> int:
        return self.channels * self.height * self.width

    def pack(self) -> bytes:
        return _IDENT.pack(IDENT_MAGIC, PROTOCOL_VERSION, self.channels, self.height, self.width,
                           self.num_classes, self.design)

    @classmethod
    def unpack(cls, data: bytes) -> Ident:
        """Parse an identify reply; BoardError when it is not one (wrong length, magic or version)."""
        if len(data) != IDENT_BYTES:
            raise BoardError(f"identify reply has {len(data)} bytes, expected {IDENT_BYTES}")
        magic, version, c, h, w, k, design = _IDENT.unpack(data)
        if magic != IDENT_MAGIC:
            raise BoardError(f"identify reply starts with {magic!r}, not {IDENT_MAGIC!r}: the board runs another "
                             f"design, or the baud rate is wrong")
        if version != PROTOCOL_VERSION:
            raise BoardError(f"the board speaks host link protocol version {version}, this hwgen speaks "
                             f"{PROTOCOL_VERSION}: rebuild the bitstream with this hwgen")
        return cls(c, h, w, k, design)


def classify_request(image: np.ndarray) -> bytes:
    """The bytes of a classify request for a uint8 (C, H, W) image: sync byte, then (y, x, c) order."""
    image = np.asarray(image)
    if image.ndim != 3 or image.dtype != np.uint8:
        raise BoardError(f"an image must be uint8 (C, H, W), not {image.dtype} {image.shape}")
    return bytes([REQUEST_CLASSIFY]) + np.ascontiguousarray(image.transpose(1, 2, 0)).tobytes()


def reply_bytes(num_classes: int) -> int:
    """Length of a classify reply: ``4 * (num_classes + 1)``."""
    return WORD_BYTES * (num_classes + 1)


def encode_reply(scores: np.ndarray, cls: int) -> bytes:
    """A classify reply for ``scores`` (integers fitting 32-bit two's complement) and class index ``cls``."""
    scores = np.asarray(scores, dtype=np.int64)
    if scores.ndim != 1 or np.any(scores < -(1 << 31)) or np.any(scores >= 1 << 31):
        raise BoardError("scores must be a vector of 32-bit signed integers")
    return scores.astype("<i4").tobytes() + struct.pack("<I", int(cls))


def decode_reply(data: bytes, num_classes: int) -> tuple[np.ndarray, int]:
    """(int64 scores (num_classes,), class index) from a classify reply.

    BoardError when the length is wrong, the class index is out of range, or
    it is not the argmax of the scores (lowest index on ties): a reply
    shifted by a lost or stray byte fails these checks.
    """
    n = reply_bytes(num_classes)
    if len(data) != n:
        raise BoardError(f"classify reply has {len(data)} bytes, expected {n} ({num_classes} scores + class)")
    scores = np.frombuffer(data[:-WORD_BYTES], dtype="<i4").astype(np.int64)
    cls = struct.unpack("<I", data[-WORD_BYTES:])[0]
    if cls >= num_classes:
        raise BoardError(f"the board replied class {cls}, but the network has {num_classes} classes "
                         f"(reply {data.hex()}): a corrupted reply, or another design on the board")
    if cls != int(np.argmax(scores)):
        raise BoardError(f"the board replied class {cls}, but the argmax of its scores {scores.tolist()} is "
                         f"{int(np.argmax(scores))}: a corrupted reply")
    return scores, cls
