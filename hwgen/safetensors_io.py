"""Writing safetensors files reproducibly: the same arrays and metadata give the same bytes.

The safetensors library writes its JSON header's keys (the metadata's among
them) in hash order, which changes from one process to the next. A
safetensors file is an 8-byte little-endian header length, the JSON header
(space-padded to a multiple of 8 bytes) and the data, whose offsets are
relative to the data's start; :func:`canonical` rewrites the header with
sorted keys and leaves the data alone, so the file stays valid and becomes
byte-identical for identical content. :func:`write_atomic` writes through a
temporary file and a rename, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import sys

from hwgen.outputs import write_bytes_atomic

__all__ = ["canonical", "covering_digest", "note", "write_atomic"]


def canonical(raw: bytes) -> bytes:
    """``raw`` (a serialised safetensors file) with its JSON header's keys sorted at every level."""
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + raw[8 + length:]


def write_atomic(path: str | os.PathLike, raw: bytes) -> None:
    """Write ``canonical(raw)`` to ``path`` (mode 644) via a temporary file and a rename."""
    write_bytes_atomic(path, canonical(raw))


def covering_digest(array_digest: str, metadata: dict[str, str]) -> str:
    """SHA-256 over the arrays' digest and every metadata string but ``sha256`` itself (keys sorted).

    What version-2 checkpoints and IR files store as ``sha256``: editing a
    header field (an architecture's normalisation mean, a threshold layer's
    shape) fails the check as editing a weight does.
    """
    fields = {k: v for k, v in metadata.items() if k != "sha256"}
    return hashlib.sha256(f"{array_digest}|{json.dumps(fields, sort_keys=True)}".encode()).hexdigest()


def note(message: str) -> None:
    """A one-line note for the user on standard error (``hwgen: note: ...``), for what is not an error."""
    print(f"hwgen: note: {message}", file=sys.stderr)
