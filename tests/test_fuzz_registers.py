"""Register faults of the fuzz campaign (benchmarks/fuzz_registers.py): every clocked register of a
generated design is found, a mutant changes exactly one register's next value, and the campaign's
register check simulates the mutants it draws."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import fuzz_registers  # noqa: E402
import fuzz_rtl  # noqa: E402


def test_every_register_found_and_one_flipped(tmp_path: Path) -> None:
    result = fuzz_rtl.fuzz_one(3, n_images=4, out=tmp_path, cache_dir=None, register_mutants=3)
    assert result["status"] == "ok", result
    tally = result["registers"]
    # the mutated design is what runs (not a cached clean model): faults of this seed are revealed
    assert tally["tried"] == 3 and tally["caught"] >= 1, tally
    verilog = (tmp_path / "net-3" / "build" / "top.v").read_text()
    sites = fuzz_registers.register_sites(verilog)
    single = verilog.count("always @(posedge clk)\n")  # the one-statement form (the others end in "begin")
    assert len(sites) == single > 10
    site = max(sites, key=lambda s: s.width)
    mutated = fuzz_registers.flip_register_bit(verilog, site, site.width - 1)
    changed = [line for line in difflib.unified_diff(verilog.splitlines(), mutated.splitlines(), n=0, lineterm="")
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert len(changed) == 2 and changed[0][1:].strip().startswith(site.name)
    assert changed[1].rstrip().endswith(f"^ {site.width}'h{1 << (site.width - 1):x} ;")
    pairs = fuzz_registers.draw_register_mutants(verilog, np.random.default_rng(0), 5)
    assert len(set(pairs)) == 5
