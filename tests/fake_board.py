"""A fake board behind a fake serial port: answers the host link protocol like the board, via the golden model.

:class:`FakeBoard` has pyserial's ``write`` / ``read`` / ``reset_input_buffer`` /
``close``. Bytes written go through the board's request parser (wait for a
sync byte, collect C*H*W bytes, identify); replies are computed with
:func:`hwgen.compile.golden.run_network` on the given IR and queued for
``read``. A ``read`` that cannot be satisfied returns what there is (a
timeout) and counts as the board's frame timeout passing: a partial frame
is dropped, as on the board.

Faults, to exercise the host's error paths: ``silent`` (nothing answers),
``answer_classify=False`` (identify only), ``lose`` (indices of written bytes
that never arrive), ``corrupt_replies`` (that many classify replies get their
class word changed), ``score_offset`` (every score shifted: still a consistent
reply, but not the golden model's), ``ident`` (another design's identify reply).
"""

from __future__ import annotations

import numpy as np

from hwgen.boards.protocol import (
    REQUEST_CLASSIFY,
    REQUEST_IDENTIFY,
    Ident,
    encode_reply,
)
from hwgen.compile.golden import run_network
from hwgen.compile.ir import Network


class FakeBoard:
    def __init__(self, net: Network, ident: Ident, *, silent: bool = False, answer_classify: bool = True,
                 lose: frozenset[int] = frozenset(), corrupt_replies: int = 0, score_offset: int = 0) -> None:
        self.net = net
        self.ident = ident
        self.silent = silent
        self.answer_classify = answer_classify
        self.lose = lose
        self.corrupt_replies = corrupt_replies
        self.score_offset = score_offset
        self.written = 0          # bytes the host wrote
        self.frames: list[np.ndarray] = []  # images the board classified
        self.closed = False
        self.opened_with: tuple | None = None
        self._out = bytearray()
        self._frame: bytearray | None = None

    # -- pyserial's interface
    def write(self, data: bytes) -> int:
        for byte in bytes(data):
            k = self.written
            self.written += 1
            if k not in self.lose:
                self._receive(byte)
        return len(data)

    def read(self, size: int) -> bytes:
        out = bytes(self._out[:size])
        del self._out[:size]
        if len(out) < size:
            self._frame = None  # the host waited: the board's frame timeout discarded a partial frame
        return out

    def reset_input_buffer(self) -> None:
        self._out.clear()

    def close(self) -> None:
        self.closed = True

    # -- the board
    def _receive(self, byte: int) -> None:
        if self.silent:
            return
        if self._frame is None:
            if byte == REQUEST_CLASSIFY:
                self._frame = bytearray()
            elif byte == REQUEST_IDENTIFY:
                self._out += self.ident.pack()
            return
        self._frame.append(byte)
        if len(self._frame) == self.ident.frame_bytes:
            c, h, w = self.ident.input_shape
            image = np.frombuffer(bytes(self._frame), dtype=np.uint8).reshape(h, w, c).transpose(2, 0, 1)
            self._frame = None
            self.frames.append(image)
            if self.answer_classify:
                self._out += self._reply(image)

    def _reply(self, image: np.ndarray) -> bytes:
        golden = run_network(self.net, image[None])
        scores, cls = golden.scores[0] + self.score_offset, int(golden.predictions[0])
        if self.corrupt_replies:
            self.corrupt_replies -= 1
            cls = (cls + 1) % self.ident.num_classes
        return encode_reply(scores, cls)
