"""Memory contents out of the simulated Verilog: one compiled model per architecture and folding, any weights.

``hwgen build`` writes ``top.v`` with every memory's initial contents inline
(Yosys's ``write_verilog`` form, what synthesis reads). For simulation,
:func:`split_memories` cuts that text into

* a **shell**: the same Verilog with each initialised memory's ``initial``
  block replaced by a run-time load,
  ``$readmemh({DIR, "/FILE.hex"}, MEM, 0, DEPTH - 1)`` where ``DIR`` comes from
  the plusarg ``+hwgen_mem=DIR`` (missing plusarg: ``$fatal``), and without
  the generator's header comment (it names the model's file and digest);
* one :class:`MemImage` per memory: its module, name, width W, depth D and
  the D words (``$readmemh`` format: one hex word of ceil(W / 4) digits per
  line, word 0 first).

Every initialised memory is cut out, whatever its contents (weight and
threshold ROMs, and the zero-initialised buffers and FIFOs): which memories
are cut is a fact of the design's structure, never of its weights, so two
weight sets of the same architecture and folding give byte-identical shells,
and the simulation cache (keyed on the shell, :mod:`hwgen.sim.runner`,
:mod:`hwgen.sim.bulk`) serves both from one compiled model. A memory the
generator splits into several (e.g. ``weights_s0`` .. ``weights_s15``) is
several memories here, each with its own file.

Stale or mismatched files are refused, never loaded: :func:`write_mem_dir`
writes the files and ``manifest.json`` (the shell's SHA-256, and per file its
SHA-256, width and depth); :func:`check_mem_dir` re-reads every file and
raises :class:`~hwgen.errors.SimError` unless each digest equals the one
derived from the ``top.v`` being simulated and the layout (names, widths,
depths) equals the one the compiled model was built for
(:attr:`SplitDesign.layout_sha256`, stored with the model). Verilator's own
``$readmemh`` only warns when a file is short, hence this check.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from hwgen.errors import SimError

__all__ = ["PLUSARG", "MemImage", "SplitDesign", "check_mem_dir", "plusarg", "shell_sources", "split_memories",
           "write_mem_dir"]

#: The plusarg that names the folder of the memory files: ``+hwgen_mem=DIR``.
PLUSARG = "hwgen_mem"
MANIFEST = "manifest.json"

# An identifier as Yosys writes it: simple, or escaped (backslash ... space).
_IDENT = r"(?:\\\S+ |[A-Za-z_][A-Za-z0-9_$]*)"
_MODULE = re.compile(rf"^module\s+({_IDENT})", re.MULTILINE)
# reg [W-1:0] NAME [D-1:0];  initial begin  NAME[i] = VALUE; ...  end
_MEMORY = re.compile(
    rf"^(?P<indent>[ \t]*)reg \[(?P<msb>\d+):0\] (?P<name>{_IDENT}) ?\[(?P<last>\d+):0\];\n"
    rf"(?P<init>[ \t]*initial begin\n(?P<body>(?:[ \t]*{_IDENT} ?\[\d+\] = [^;\n]+;\n)*)[ \t]*end\n)",
    re.MULTILINE)
_WORD = re.compile(rf"^[ \t]*(?P<name>{_IDENT}) ?\[(?P<index>\d+)\] = (?P<value>[^;\n]+);$", re.MULTILINE)
_SIZED = re.compile(r"^(\d+)'([hbd])([0-9a-fA-F_]+)$")
_HEADER = re.compile(r"\A(?://[^\n]*\n)+")


@dataclass(frozen=True)
class MemImage:
    """One initialised memory: ``module`` and ``name`` as in the Verilog, ``width`` W bits x ``depth`` D words."""

    file: str       # FILE.hex in the memory folder
    module: str
    name: str
    width: int
    depth: int
    words: tuple[int, ...]

    def hex_text(self) -> str:
        """``$readmemh`` text: D lines of ceil(W / 4) hex digits, word 0 first."""
        digits = max(1, (self.width + 3) // 4)
        return "".join(f"{w:0{digits}x}\n" for w in self.words)


@dataclass(frozen=True)
class SplitDesign:
    """A ``top.v`` cut in two: the ``shell`` Verilog (no contents) and the ``memories``."""

    shell: str
    memories: tuple[MemImage, ...]

    @property
    def shell_sha256(self) -> str:
        return hashlib.sha256(self.shell.encode()).hexdigest()

    @property
    def layout(self) -> list[list]:
        """[file, width, depth] per memory: what a compiled shell expects to load."""
        return [[m.file, m.width, m.depth] for m in self.memories]

    @property
    def layout_sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.layout).encode()).hexdigest()


def _value(text: str, width: int, where: str) -> int:
    text = text.strip()
    m = _SIZED.match(text)
    if m is None:
        if text.isdigit():
            return int(text)
        raise SimError(f"{where}: cannot read the initial value {text[:40]!r} (x or z bits?)")
    base = {"h": 16, "b": 2, "d": 10}[m.group(2)]
    value = int(m.group(3).replace("_", ""), base)
    if int(m.group(1)) != width or value >> width:
        raise SimError(f"{where}: initial value {text[:40]!r} is not {width} bits wide")
    return value


def _file_name(module: str, name: str) -> str:
    raw = f"{module.strip().lstrip(chr(92))}.{name.strip().lstrip(chr(92))}"
    return re.sub(r"[^A-Za-z0-9_.]", "_", raw)


def _load_block(indent: str, name: str, last: int, file: str) -> str:
    """The run-time load that replaces a memory's initial block."""
    return (f"{indent}initial begin\n"
            f"{indent}  string hwgen_mem_dir;\n"
            f"{indent}  if (!$value$plusargs(\"{PLUSARG}=%s\", hwgen_mem_dir))\n"
            f"{indent}    $fatal(1, \"hwgen: no +{PLUSARG}=DIR: the folder of the memory files\");\n"
            f"{indent}  $readmemh({{hwgen_mem_dir, \"/{file}\"}}, {name}, 0, {last});\n"
            f"{indent}end\n")


def split_memories(verilog: str, load: Callable[[str, str, int, str], str] | None = None) -> SplitDesign:
    """Cut every initialised memory's contents out of ``verilog`` (Yosys ``write_verilog`` output).

    ``load(indent, name, last, file)``: the Verilog that replaces a memory's
    initial block (default: the simulation's run-time load from ``+hwgen_mem=DIR``;
    synthesis passes a plain ``$readmemh`` of a path, :mod:`hwgen.synth.sources`).

    Words an initial block does not set are 0 in the file (as Verilator's
    ``--x-initial fast`` would leave them unspecified, Yosys never omits any
    for Amaranth's memories). SimError when a value cannot be read.
    """
    body = _HEADER.sub("", verilog)
    modules = [(m.start(), m.group(1)) for m in _MODULE.finditer(body)]
    memories: list[MemImage] = []
    used: set[str] = set()
    pieces: list[str] = []
    pos = 0
    for m in _MEMORY.finditer(body):
        module = next((name for start, name in reversed(modules) if start < m.start()), "top")
        name, width, depth = m.group("name"), int(m.group("msb")) + 1, int(m.group("last")) + 1
        where = f"memory {name.strip()} of module {module.strip()}"
        words = [0] * depth
        for w in _WORD.finditer(m.group("body")):
            if w.group("name").strip() != name.strip():
                raise SimError(f"{where}: its initial block sets {w.group('name').strip()}")
            index = int(w.group("index"))
            if index >= depth:
                raise SimError(f"{where}: initial word {index} beyond its depth {depth}")
            words[index] = _value(w.group("value"), width, where)
        file = _file_name(module, name)
        stem, n = file, 1
        while file + ".hex" in used:
            n += 1
            file = f"{stem}_{n}"
        file += ".hex"
        used.add(file)
        memories.append(MemImage(file, module.strip(), name.strip(), width, depth, tuple(words)))
        pieces += [body[pos:m.start("init")], (load or _load_block)(m.group("indent"), name, depth - 1, file)]
        pos = m.end()
    pieces.append(body[pos:])
    return SplitDesign("".join(pieces), tuple(memories))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_mem_dir(split: SplitDesign, folder: str | Path) -> Path:
    """Write every memory's ``FILE.hex`` and ``manifest.json`` into ``folder`` (emptied first); checked."""
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    files = {}
    for mem in split.memories:
        data = mem.hex_text().encode()
        (folder / mem.file).write_bytes(data)
        files[mem.file] = {"sha256": _sha256(data), "width": mem.width, "depth": mem.depth}
    manifest = {"shell_sha256": split.shell_sha256, "layout_sha256": split.layout_sha256, "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    check_mem_dir(split, folder, split.layout_sha256)
    return folder


def check_mem_dir(split: SplitDesign, folder: str | Path, model_layout_sha256: str | None) -> None:
    """SimError unless ``folder`` holds exactly ``split``'s contents for a model built for its layout.

    ``model_layout_sha256``: the layout digest recorded with the compiled model
    (None: a model built before memories were cut out, refused).
    """
    folder = Path(folder)
    if model_layout_sha256 != split.layout_sha256:
        raise SimError(f"the compiled model in the cache expects another memory layout than {folder} "
                       f"({model_layout_sha256 or 'none recorded'} vs {split.layout_sha256[:16]}): "
                       f"delete the cache entry to rebuild it")
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SimError(f"{folder / MANIFEST} is unreadable ({exc}): write the memory files again") from None
    if manifest.get("shell_sha256") != split.shell_sha256:
        raise SimError(f"the memory files in {folder} were written for another design (shell digest differs)")
    for mem in split.memories:
        path = folder / mem.file
        want = _sha256(mem.hex_text().encode())
        try:
            got = _sha256(path.read_bytes())
        except OSError:
            raise SimError(f"memory file {path} is missing") from None
        if got != want or manifest["files"].get(mem.file, {}).get("sha256") != want:
            raise SimError(f"memory file {path} does not hold the contents of {mem.name} in {mem.module} "
                           f"of the top.v being simulated (sha256 {got[:16]}, expected {want[:16]}): "
                           f"stale or edited; it is never loaded")


def plusarg(folder: str | Path) -> str:
    """``+hwgen_mem=FOLDER`` (absolute): where a shell's memories read their files."""
    return f"+{PLUSARG}={Path(folder).resolve()}"


@contextlib.contextmanager
def shell_sources(split: SplitDesign, sources: Sequence[str | Path]) -> Iterator[list[Path]]:
    """``sources`` (top.v first) with top.v replaced by ``split``'s shell, in a temporary file for the block."""
    with tempfile.TemporaryDirectory(prefix="hwgen-shell-") as tmp:
        shell = Path(tmp) / Path(sources[0]).name
        shell.write_text(split.shell)
        yield [shell, *map(Path, sources[1:])]
