"""The board side of the host link (:mod:`hwgen.boards.protocol`): UART bytes <-> the accelerator's streams.

:class:`HostLink` sits between a :class:`~hwgen.boards.uart.UARTReceiver` /
:class:`~hwgen.boards.uart.UARTTransmitter` pair and the accelerator
(``hwgen_top``'s AXI4-Stream ports):

* requests: it waits for a sync byte; after ``0xA5`` it stores the next
  C*H*W bytes in a frame buffer (block RAM, one byte per address), then
  streams the whole frame into the accelerator. Storing first means the
  accelerator's back-pressure can never overrun the UART (which has none),
  and a frame cut short by a lost byte is dropped without reaching the
  accelerator: a gap of more than ``timeout_cycles`` between two bytes of a
  frame sends the link back to waiting for a sync byte. Bytes arriving while
  the frame is being streamed out are ignored (the host waits for the reply).
  After ``0x3F`` it sends the identify reply;
* replies: every 32-bit output word of the accelerator leaves as 4 bytes,
  least significant first; the identify reply (16 constant bytes) goes out
  between two words, never inside one.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.boards.protocol import (
    IDENT_BYTES,
    REQUEST_CLASSIFY,
    REQUEST_IDENTIFY,
    WORD_BYTES,
)
from hwgen.errors import BoardError

__all__ = ["HostLink", "pixel_layout", "word_layout"]

#: The accelerator's input beat (s_axis): a pixel byte, and tlast on a frame's last byte.
pixel_layout = data.StructLayout({"data": 8, "last": 1})
#: The accelerator's output beat (m_axis): a 32-bit word, and tlast on a frame's class word.
word_layout = data.StructLayout({"data": 32, "last": 1})


class HostLink(wiring.Component):
    """Request framing, frame buffer and reply serialiser of the host link (see the module docstring).

    Parameters (keyword-only; BoardError names any violation)
    ----------
    frame_bytes : int
        C*H*W, the bytes of one image (the frame buffer's depth).
    timeout_cycles : int
        Largest gap, in clock cycles, between two bytes of one frame; a longer
        gap discards the partial frame.
    ident : bytes
        The identify reply (``protocol.Ident.pack()``, 16 bytes).
    class_bits : int
        Width of ``last_class`` (default 8).

    Ports
    -----
    rx : In(stream.Signature(8, always_ready=True))
        Received bytes (:class:`UARTReceiver`'s ``o``).
    pixels : Out(stream.Signature(pixel_layout))
        To the accelerator's s_axis: a frame's bytes, ``last`` on its final one.
    words : In(stream.Signature(word_layout))
        From the accelerator's m_axis.
    tx : Out(stream.Signature(8))
        Bytes to send (:class:`UARTTransmitter`'s ``i``).
    last_class : Out(class_bits)
        The low bits of the last class word (a word with ``last``) sent back; 0 after reset.
    frame_toggle : Out(1)
        Flips each time a class word is taken.
    aborted : Out(1)
        High for one cycle when a partial frame is discarded (timeout).

    Timing
    ------
    The frame starts into the accelerator the cycle after its last byte
    arrives, one byte per cycle while ``pixels.ready``. A reply byte is offered
    the cycle after its word is taken, then one byte per cycle while
    ``tx.ready``; the next word is taken the cycle after the last byte of the
    previous one.
    """

    def __init__(self, *, frame_bytes: int, timeout_cycles: int, ident: bytes, class_bits: int = 8) -> None:
        for name, value in (("frame_bytes", frame_bytes), ("timeout_cycles", timeout_cycles),
                            ("class_bits", class_bits)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BoardError(f"{name} must be a positive integer, not {value!r}")
        if not isinstance(ident, bytes) or len(ident) != IDENT_BYTES:
            raise BoardError(f"ident must be {IDENT_BYTES} bytes (protocol.Ident.pack()), not {ident!r}")
        self.frame_bytes = frame_bytes
        self.timeout_cycles = timeout_cycles
        self.ident = ident
        self.class_bits = class_bits
        super().__init__({
            "rx": In(stream.Signature(8, always_ready=True)),
            "pixels": Out(stream.Signature(pixel_layout)),
            "words": In(stream.Signature(word_layout)),
            "tx": Out(stream.Signature(8)),
            "last_class": Out(class_bits),
            "frame_toggle": Out(1),
            "aborted": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        n = self.frame_bytes
        m.submodules.frame = frame = Memory(shape=8, depth=n, init=[])
        wr = frame.write_port()
        rd = frame.read_port()  # synchronous: data of the address given at the previous enabled edge

        # -- requests: sync byte, frame bytes into the buffer, then out to the accelerator
        count = Signal(range(n + 1))
        idle = Signal(range(self.timeout_cycles + 1))
        ident_request = Signal()
        raddr = Signal(range(n + 1))
        advance = Signal()
        m.d.comb += [wr.addr.eq(count), wr.data.eq(self.rx.payload), rd.addr.eq(raddr),
                     self.pixels.payload.data.eq(rd.data), self.pixels.payload.last.eq(raddr == n),
                     advance.eq(~self.pixels.valid | self.pixels.ready)]
        m.d.sync += self.aborted.eq(0)
        with m.FSM():
            with m.State("WAIT"):
                with m.If(self.rx.valid & (self.rx.payload == REQUEST_CLASSIFY)):
                    m.d.sync += [count.eq(0), idle.eq(0)]
                    m.next = "RECEIVE"
                with m.If(self.rx.valid & (self.rx.payload == REQUEST_IDENTIFY)):
                    m.d.sync += ident_request.eq(1)
            with m.State("RECEIVE"):
                with m.If(self.rx.valid):
                    m.d.comb += wr.en.eq(1)
                    m.d.sync += [count.eq(count + 1), idle.eq(0)]
                    with m.If(count == n - 1):
                        m.d.sync += raddr.eq(0)
                        m.next = "SEND"
                with m.Elif(idle == self.timeout_cycles):
                    m.d.sync += self.aborted.eq(1)
                    m.next = "WAIT"
                with m.Else():
                    m.d.sync += idle.eq(idle + 1)
            with m.State("SEND"):
                # pixels.valid / rd.data describe address raddr - 1; fetch raddr when the output moves on
                m.d.comb += rd.en.eq(advance)
                with m.If(advance):
                    with m.If(raddr == n):
                        m.d.sync += self.pixels.valid.eq(0)
                        m.next = "WAIT"
                    with m.Else():
                        m.d.sync += [self.pixels.valid.eq(1), raddr.eq(raddr + 1)]

        # -- replies: words out as 4 bytes each, least significant first; the identify reply between words
        word = Signal(32)
        have_word = Signal()
        byte_index = Signal(range(WORD_BYTES))
        sending_ident = Signal()
        ident_index = Signal(range(IDENT_BYTES))
        ident_rom = Array(Const(b, 8) for b in self.ident)
        with m.If(sending_ident):
            m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(ident_rom[ident_index])]
            with m.If(self.tx.ready):
                m.d.sync += ident_index.eq(ident_index + 1)
                with m.If(ident_index == IDENT_BYTES - 1):
                    m.d.sync += sending_ident.eq(0)
        with m.Elif(have_word):
            m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(word.word_select(byte_index, 8))]
            with m.If(self.tx.ready):
                m.d.sync += byte_index.eq(byte_index + 1)
                with m.If(byte_index == WORD_BYTES - 1):
                    m.d.sync += have_word.eq(0)
        with m.Elif(ident_request):
            m.d.sync += [sending_ident.eq(1), ident_index.eq(0), ident_request.eq(0)]
        with m.Else():
            m.d.comb += self.words.ready.eq(1)
            with m.If(self.words.valid):
                m.d.sync += [word.eq(self.words.payload.data), have_word.eq(1), byte_index.eq(0)]
                with m.If(self.words.payload.last):
                    m.d.sync += [self.last_class.eq(self.words.payload.data),
                                 self.frame_toggle.eq(~self.frame_toggle)]
        return m
