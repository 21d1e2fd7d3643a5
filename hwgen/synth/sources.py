"""What Yosys reads: the build's Verilog with every memory's contents in a ``$readmemh`` file.

``top.v`` holds every memory's initial contents inline (Yosys ``write_verilog``
form, ``MEM[i] = VALUE;`` per word): 14-21 MB for CNV, and Yosys's Verilog
front end spends most of a CNV synthesis parsing them (CNV ``--pe 4``: 1,451 s
of Yosys, the front end alone over 16 minutes for ``--pe 2``; the same text
without the contents parses in seconds). :func:`write_synthesis_sources` writes,
for each source file, ``synth_src/FILE`` = the same Verilog with each
initialised memory's ``initial`` block replaced by
``initial $readmemh("synth_src/MEMFILE.hex", MEM, 0, DEPTH - 1);`` and the
``.hex`` files beside it (:func:`hwgen.sim.memfiles.split_memories`, the cut the
simulation uses: every word of every initialised memory, zeros included). The
path is relative to the build folder, where ``synth.sh`` runs Yosys.

The design Yosys elaborates is the same: the contents are the same words, now
read from files (docs/synth.md: Yosys's ``equiv_make`` / ``equiv_simple`` prove
the two elaborated designs of TFC equivalent, and ``tests/test_synth.py`` does
it for a small design and catches one changed word).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hwgen.sim.memfiles import split_memories

__all__ = ["SOURCE_DIR", "synthesis_source_names", "write_synthesis_sources"]

#: The folder (in the build folder) of the Verilog Yosys reads and its memory files.
SOURCE_DIR = "synth_src"


def synthesis_source_names(sources: Sequence[str]) -> list[str]:
    """The files Yosys reads for ``sources`` (names relative to the build folder)."""
    return [f"{SOURCE_DIR}/{Path(name).name}" for name in sources]


def _readmemh(stem: str):
    def load(indent: str, name: str, last: int, file: str) -> str:
        return f'{indent}initial $readmemh("{SOURCE_DIR}/{stem}{file}", {name}, 0, {last});\n'
    return load


def write_synthesis_sources(build_dir: Path, sources: Sequence[str]) -> list[str]:
    """Write :data:`SOURCE_DIR` for ``sources`` (Verilog files in ``build_dir``; emptied first); the names
    :func:`synthesis_source_names` gives. Memory files of the k-th source are prefixed ``k.`` when there
    are several sources."""
    build_dir = Path(build_dir)
    folder = build_dir / SOURCE_DIR
    if folder.is_dir():
        for old in folder.iterdir():
            if old.is_file():
                old.unlink()
    folder.mkdir(exist_ok=True)
    names = synthesis_source_names(sources)
    if len(set(names)) != len(names):
        raise ValueError(f"Verilog sources with the same file name: {', '.join(sources)}")
    for k, (source, name) in enumerate(zip(sources, names)):
        stem = f"{k}." if len(sources) > 1 else ""
        split = split_memories((build_dir / source).read_text(), load=_readmemh(stem))
        for mem in split.memories:
            (folder / f"{stem}{mem.file}").write_text(mem.hex_text())
        (build_dir / name).write_text(split.shell)
    return names
