"""Headless Chromium opens report.html and explore.html from disk (slow: ``-m slow``).

Chromium (Debian package ``chromium``, installed by scripts/setup.sh) runs
with the flags that keep it off the network and from hanging on this kind of
machine, and a new empty profile per call. Checks: the DOM Chromium built
(``--dump-dom``) has the charts as SVG with drawn paths, and the numbers it
shows equal those in the JSON reports; a screenshot is mostly not blank.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from explore_fakes import estimated_synth, tiny_spec
from html_fields import Fields, number
from irnets import random_network

from hwgen.hw.builder import BuildOptions, build
from hwgen.compile.artifact import save_network
from hwgen.explore.cluster import dask_client
from hwgen.explore.sweep import run_sweep
from hwgen.report.build_page import write_build_report

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(page: Path, profile: Path, *args: str) -> str:
    """Run headless Chromium on ``page`` (a file:// URL) with a new empty profile; its standard output."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/setup.sh installs it)")
    profile.mkdir(parents=True)
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def not_blank(png: Path) -> float:
    """The fraction of the screenshot's pixels that are not white."""
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("L"))
    return float((pixels < 240).mean())


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("browser")
    ir = root / "tiny.hwir"
    save_network(ir, random_network(np.random.default_rng(0), (1, 2, 2), [("fc", 4)], num_classes=2))
    folder = build(ir, root / "b", BuildOptions(pe=2, target="ecp5-25k"), log=lambda *_: None).out_dir
    estimated_synth(folder, "ecp5-25k", 100.0, 1)  # a synth_report.json of the real form
    report = write_build_report(folder)
    with dask_client(workers=1) as client:
        run_sweep(tiny_spec(ir), root / "sweep", client, synthesise_fn=functools.partial(estimated_synth))
    return {"root": root, "report": report, "build": folder, "explore": root / "sweep" / "explore.html"}


def test_report_html_in_chromium(pages: dict) -> None:
    root = pages["root"]
    f = Fields(chromium(pages["report"], root / "p1", "--dump-dom"))
    assert len(f.svgs) == 3 and min(f.svgs) > 5  # cycles, memory, resources
    report = json.loads((pages["build"] / "report.json").read_text())
    synth = json.loads((pages["build"] / "synth_report.json").read_text())
    assert number(f.fields["cycles_per_frame"]) == report["cycles_per_frame"]
    assert f.fields["bottleneck"] == report["summary"]["bottleneck"]
    assert number(f.fields["fmax_mhz"]) == pytest.approx(synth["fmax_mhz"], abs=0.005)
    assert number(f.fields["resource:LUT4"]) == synth["resources"]["LUT4"]["used"]
    chromium(pages["report"], root / "p2", "--window-size=1200,1600", f"--screenshot={root / 'report.png'}")
    assert not_blank(root / "report.png") > 0.03


def test_explore_html_in_chromium(pages: dict) -> None:
    root = pages["root"]
    f = Fields(chromium(pages["explore"], root / "p3", "--dump-dom"))
    assert len(f.svgs) == 2 and min(f.svgs) > 5  # the two Pareto charts
    doc = json.loads((pages["explore"].parent / "explore.json").read_text())
    assert len(doc["points"]) == 6 and int(f.fields["ok"]) == 6
    for row in doc["points"]:
        name = row["point"]
        assert number(f.fields[f"lut4:{name}"]) == row["lut4"]
        assert number(f.fields[f"fmax_mhz:{name}"]) == pytest.approx(row["fmax_mhz"], abs=0.005)
        assert number(f.fields[f"frames_per_second:{name}"]) == pytest.approx(row["frames_per_second"], abs=0.5)
    for best in doc["best"]:
        assert f.fields[f"best:{best['field']}"] == best["point"]
    chromium(pages["explore"], root / "p4", "--window-size=1200,1600", f"--screenshot={root / 'explore.png'}")
    assert not_blank(root / "explore.png") > 0.03
