"""hwgen explore: sweeps on a real Dask LocalCluster (loopback), resumption, failures, results, the CLI.

The Dask tests synthesise with :func:`explore_fakes.estimated_synth` (the
build's estimates in synth_report.json form, milliseconds, passed through
run_sweep's documented ``synthesise_fn``); the foldings are built for real
once per module and copied into each sweep. ``test_real_synthesis_through_the_cli``
runs Yosys + nextpnr on a tiny design through ``hwgen explore``; ``-m slow``
adds a real 3 x 2 sweep on two workers against a serial run.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from explore_fakes import calls, estimated_synth, tiny_spec
from irnets import random_network

from hwgen.cli import main
from hwgen.compile.artifact import save_network
from hwgen.errors import ConfigError
from hwgen.explore.cluster import dask_client
from hwgen.explore.results import best_points, pareto_front, rebuild_command
from hwgen.explore.spec import Folding, FoldingKind, Point, SweepSpec, build_key, parse_list, point_key
from hwgen.explore.sweep import run_sweep
from hwgen.explore.tasks import POINT_RECORD, build_folding, run_point

#: Fields that differ between runs of the same point (where and how long it ran).
VOLATILE = {"worker", "point_dir", "point_s", "build_s", "synth_s", "pnr_s", "pack_s"}


def same_results(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """A tiny IR (1x2x2 -> fc 4 -> 2 classes) and its --pe 1, 2, 4 builds made once (DIR/builds/...)."""
    root = tmp_path_factory.mktemp("explore")
    model = root / "tiny.hwir"
    save_network(model, random_network(np.random.default_rng(0), (1, 2, 2), [("fc", 4)], num_classes=2))
    spec = tiny_spec(model)
    digest = __import__("hashlib").sha256(model.read_bytes()).hexdigest()
    for p in spec.points()[::2]:  # one point per folding
        record = build_folding(str(model), str(root / "prebuilt" / "builds" / p.build_name), p, spec.target,
                               build_key(digest, p, spec.target))
        assert record["status"] == "ok", record
    return {"model": model, "spec": spec, "prebuilt": root / "prebuilt"}


def sweep_dir(tiny: dict, path: Path) -> Path:
    """A sweep folder holding copies of the module's builds (their records keep them from being rebuilt)."""
    shutil.copytree(tiny["prebuilt"], path)
    return path


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2) as c:
        c.wait_for_workers(2)
        yield c


# -- the sweep as data ---------------------------------------------------------

def test_points_and_their_keys() -> None:
    spec = SweepSpec(model="m.ckpt", target="ecp5-85k", foldings=(Folding(FoldingKind.FPS, 1000),
                                                                  Folding(FoldingKind.PE, 4)),
                     seeds=(1, 2), freqs_mhz=(100.0, 50.0))
    points = spec.points()
    assert [p.name for p in points] == [
        "fps1000-seed1-100MHz", "fps1000-seed2-100MHz", "fps1000-seed1-50MHz", "fps1000-seed2-50MHz",
        "pe4-seed1-100MHz", "pe4-seed2-100MHz", "pe4-seed1-50MHz", "pe4-seed2-50MHz"]
    # --fps is built at each clock (the folding depends on it); --pe once, at the first clock
    assert {p.build_name for p in points} == {"fps1000-100MHz", "fps1000-50MHz", "pe4-100MHz"}
    base = point_key("a" * 64, points[0], "ecp5-85k")
    assert base == point_key("a" * 64, points[0], "ecp5-85k") and len(base) == 64
    changed = [point_key("b" * 64, points[0], "ecp5-85k"), point_key("a" * 64, points[0], "ecp5-45k"),
               point_key("a" * 64, points[1], "ecp5-85k"), point_key("a" * 64, points[2], "ecp5-85k"),
               point_key("a" * 64, Point(Folding(FoldingKind.FPS, 2000), 1, 100.0, 100.0), "ecp5-85k")]
    assert len({base, *changed}) == 6  # model, target, seed, clock, folding: each changes the key


@pytest.mark.parametrize("kw,message", [
    ({"foldings": (Folding(FoldingKind.PE, 4),) * 2}, "lists a value twice"),
    ({"seeds": ()}, "at least one --seeds"), ({"seeds": (-1,)}, "--seeds must be integers >= 0"),
    ({"freqs_mhz": (0.0,)}, "--clock values must be positive"), ({"target": "xc7"}, "xc7"),
])
def test_bad_sweeps_are_refused(kw: dict, message: str) -> None:
    args = {"model": "m", "target": "ecp5-85k", "foldings": (Folding(FoldingKind.PE, 4),), **kw}
    with pytest.raises(ConfigError, match=message):
        SweepSpec(**args)
    with pytest.raises(ConfigError, match="--pe values must be integers"):
        Folding(FoldingKind.PE, 2.5)
    with pytest.raises(ConfigError, match="comma-separated integers"):
        parse_list("1,,2", "--seeds", int)
    assert parse_list(" 1, 2 ,4", "--pe", int) == (1, 2, 4)


def test_pareto_front_and_best_points() -> None:
    def row(name, lut4, ebr, fps, fmax=100.0):
        return {"point": name, "status": "ok", "lut4": lut4, "ebr": ebr, "frames_per_second": fps,
                "fps_per_klut4": fps / lut4 * 1000, "fmax_mhz": fmax, "folding": "--pe 1", "seed": 1,
                "freq_mhz": 100.0, "build_clock_mhz": 100.0}
    rows = [row("a", 1000, 4, 10.0), row("b", 2000, 2, 30.0), row("c", 2500, 8, 25.0),  # c: worse than b in both
            row("d", 4000, 8, 40.0, fmax=90.0), row("e", 1000, 4, 5.0),                 # e: same cost as a, slower
            {"point": "f", "status": "failed", "lut4": None, "ebr": None, "frames_per_second": None}]
    assert [r["point"] for r in pareto_front(rows, "lut4")] == ["a", "b", "d"]
    assert [r["point"] for r in pareto_front(rows, "ebr")] == ["b", "d"]
    best = {name: r["point"] for name, r in best_points(rows)}
    assert best == {"most frames/s": "d", "most frames/s per 1k LUT4": "b", "fewest LUT4": "a",
                    "fewest block RAMs": "b", "highest Fmax": "b"}  # Fmax tie a/b/c/e at 100: most frames/s
    assert rebuild_command(rows[1], model="m.ckpt", target="ecp5-85k") == (
        "hwgen build m.ckpt --pe 1 --target ecp5-85k --clock 100 -o build/b && "
        "hwgen synth build/b --target ecp5-85k --clock 100 --seed 1")


# -- sweeps on a LocalCluster --------------------------------------------------

def test_two_workers_give_the_serial_results(tiny: dict, client, tmp_path: Path) -> None:
    spec = tiny["spec"]
    fake = functools.partial(estimated_synth, delay=0.3)
    outcome = run_sweep(spec, sweep_dir(tiny, tmp_path / "dask"), client, synthesise_fn=fake)
    assert outcome.ran == 6 and outcome.skipped == 0 and not outcome.failed
    assert len({r["worker"] for r in outcome.rows}) == 2  # both workers synthesised
    # serial: the same task functions in this process, one point after the other, no Dask
    serial = sweep_dir(tiny, tmp_path / "serial")
    digest = __import__("hashlib").sha256(tiny["model"].read_bytes()).hexdigest()
    rows = [run_point(build_folding(str(tiny["model"]), str(serial / "builds" / p.build_name), p, spec.target,
                                    build_key(digest, p, spec.target)),
                      str(serial / "points" / p.name), p, spec.target, point_key(digest, p, spec.target), fake)
            for p in spec.points()]
    assert same_results(outcome.rows) == same_results(rows)
    # the results as files: explore.json, explore.csv, explore.html, a report.html per point
    doc = json.loads((tmp_path / "dask" / "explore.json").read_text())
    assert same_results(doc["points"]) == same_results(rows)
    csv_lines = (tmp_path / "dask" / "explore.csv").read_text().splitlines()
    assert len(csv_lines) == 7 and csv_lines[0].startswith("point,status,folding,seed")
    assert "<svg" in (tmp_path / "dask" / "explore.html").read_text()
    assert all((tmp_path / "dask" / "points" / r["point"] / "report.html").is_file() for r in rows)
    # a rerun synthesises nothing
    before = len(calls(tmp_path / "dask"))
    again = run_sweep(spec, tmp_path / "dask", client, synthesise_fn=fake)
    assert again.ran == 0 and again.skipped == 6 and len(calls(tmp_path / "dask")) == before
    assert same_results(again.rows) == same_results(rows)


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(tiny: dict, client, tmp_path: Path) -> None:
    out = sweep_dir(tiny, tmp_path / "s")
    failing = functools.partial(estimated_synth, fail_seed=2)
    outcome = run_sweep(tiny["spec"], out, client, synthesise_fn=failing)
    failed = sorted(r["point"] for r in outcome.failed)
    assert failed == ["pe1-seed2-100MHz", "pe2-seed2-100MHz", "pe4-seed2-100MHz"]
    assert all(r["error"] == "RuntimeError: yosys crashed on seed 2" for r in outcome.failed)
    assert sum(r["status"] == "ok" for r in outcome.rows) == 3
    assert "yosys crashed on seed 2" in (out / "explore.html").read_text()
    n = len(calls(out))
    run_sweep(tiny["spec"], out, client, synthesise_fn=failing)  # a failure is a result: not redone
    assert len(calls(out)) == n
    retried = run_sweep(tiny["spec"], out, client, synthesise_fn=estimated_synth, retry_failed=True)
    assert retried.ran == 3 and not retried.failed
    assert sorted(line.split()[1] for line in calls(out)[n:] if line.startswith("start")) == failed


def test_a_build_that_fails_fails_its_points_only(tiny: dict, client, tmp_path: Path) -> None:
    spec = SweepSpec(model=str(tiny["model"]), target="ecp5-25k",
                     foldings=(Folding(FoldingKind.PE, 3), Folding(FoldingKind.PE, 1)))
    outcome = run_sweep(spec, sweep_dir(tiny, tmp_path / "s"), client, synthesise_fn=estimated_synth)
    (bad,) = outcome.failed
    assert bad["point"] == "pe3-seed1-100MHz" and bad["error"].startswith("build --pe 3: ")
    assert "PE must divide" in bad["error"] or "divide" in bad["error"]
    assert [r["status"] for r in outcome.rows] == ["failed", "ok"]


def test_fit_is_one_folding_built_as_hwgen_build_fit(tiny: dict, client, tmp_path: Path) -> None:
    """``--fit``: one folding, built with ``hwgen build --fit`` (the fastest balanced one that fits the target),
    named ``fit``; its rebuild command says ``--fit``; one build for every seed."""
    from hwgen.hw.builder import build
    from hwgen.explore.command import _spec

    fit = Folding(FoldingKind.FIT)
    assert (fit.option, fit.label, fit.build_options(target="ecp5-25k", clock_mhz=100).fit) == ("--fit", "fit", True)
    with pytest.raises(ConfigError, match="--fit takes no value"):
        Folding(FoldingKind.FIT, 2)
    with pytest.raises(ConfigError, match="--pe needs a value"):
        Folding(FoldingKind.PE)
    spec = SweepSpec(model=str(tiny["model"]), target="ecp5-25k", foldings=(fit,), seeds=(1, 2))
    outcome = run_sweep(spec, tmp_path / "s", client, synthesise_fn=estimated_synth)
    assert [r["point"] for r in outcome.rows] == ["fit-seed1-100MHz", "fit-seed2-100MHz"]
    assert all(r["status"] == "ok" for r in outcome.rows)
    assert [p.name for p in (tmp_path / "s" / "builds").iterdir()] == ["fit-100MHz"]
    direct = build(tiny["model"], tmp_path / "direct", fit.build_options(target="ecp5-25k", clock_mhz=100),
                   log=lambda *_: None).report
    assert outcome.rows[0]["cycles_per_frame"] == direct["cycles_per_frame"]
    assert "--fit" in rebuild_command(outcome.rows[0], model="m.hwir", target="ecp5-25k")
    args = __import__("argparse").Namespace(fit=True, pe=None, fps=None, model=Path("m.hwir"), target="ecp5-25k",
                                            seeds="1,2", freq="100")
    assert _spec(args).foldings == (fit,)


def test_a_killed_worker_costs_a_retry_not_the_sweep(tiny: dict, tmp_path: Path) -> None:
    out = sweep_dir(tiny, tmp_path / "s")
    killed = []
    with dask_client(workers=2) as c:
        c.wait_for_workers(2)
        pids = c.run(os.getpid)

        def kill_a_busy_worker(row: dict, done: int, total: int) -> None:
            if killed:
                return
            busy = [addr for addr, keys in c.processing().items() if keys and addr in pids]
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(busy[0])

        outcome = run_sweep(tiny["spec"], out, c, synthesise_fn=functools.partial(estimated_synth, delay=1.5),
                            on_point=kill_a_busy_worker)
    assert killed, "no worker was busy after the first point"
    assert outcome.ran == 6 and not outcome.failed and all(r["status"] == "ok" for r in outcome.rows)
    log = calls(out)
    starts = {r["point"]: log.count(f"start {r['point']}") for r in outcome.rows}
    dones = {r["point"]: log.count(f"done {r['point']}") for r in outcome.rows}
    # the killed task ran again on a live worker (if the kill landed just after its synthesis, that ran twice)
    assert all(starts[p] >= dones[p] >= 1 for p in starts) and sum(starts.values()) >= 7


def test_interrupt_and_resume_synthesises_no_point_twice(tiny: dict, tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) stops the sweep; a rerun finishes
    it and synthesises none of the points that had finished before the interruption."""
    out = sweep_dir(tiny, tmp_path / "s")
    helper = Path(__file__).with_name("explore_fakes.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(helper.parent.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(helper), str(out), str(tiny["model"]), "1.0"], env=env,
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while sum(line.startswith("done") for line in calls(out)) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, output
    finished = {p.name for p in (out / "points").iterdir() if (p / POINT_RECORD).is_file()}
    assert 2 <= len(finished) < 6
    doc = json.loads((out / "explore.json").read_text())
    # explore.json lists what the sweep knew when it stopped; a task running then may still have finished
    assert doc["interrupted"] and {r["point"] for r in doc["points"] if r["status"] != "pending"} <= finished
    assert sum(r["status"] == "pending" for r in doc["points"]) >= 6 - len(finished)
    first_run = len(calls(out))
    with dask_client(workers=2) as c:
        outcome = run_sweep(tiny["spec"], out, c, synthesise_fn=estimated_synth)
    assert outcome.skipped == len(finished) and outcome.ran == 6 - len(finished)
    assert all(r["status"] == "ok" for r in outcome.rows)
    resumed = [line.split()[1] for line in calls(out)[first_run:] if line.startswith("start")]
    assert sorted(resumed) == sorted({r["point"] for r in outcome.rows} - finished)


# -- the CLI -------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["--pe", "1", "--workers", "0"], "argument --workers: must be a positive integer"),
    (["--pe", "1", "--scheduler", "127.0.0.1:1"], "--scheduler takes an address like tcp://"),
    (["--pe", "1,x"], "--pe takes comma-separated integers"),
    (["--fps", "1000", "--freq", "-5"], "--clock values must be positive"),
])
def test_cli_errors(tiny: dict, tmp_path: Path, capsys, args: list[str], message: str) -> None:
    assert main(["explore", str(tiny["model"]), "--target", "ecp5-25k", "-o", str(tmp_path / "s"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hwgen: error: ") and message in err and "\n" not in err


def test_cli_missing_model(tmp_path: Path, capsys) -> None:
    assert main(["explore", str(tmp_path / "no.ckpt"), "--target", "ecp5-25k", "--pe", "1", "--workers", "1",
                 "-o", str(tmp_path / "s")]) == 2
    assert "no such model file" in capsys.readouterr().err


def test_real_synthesis_through_the_cli(tiny: dict, tmp_path: Path, capsys) -> None:
    """hwgen explore with Yosys + nextpnr + ecppack on a tiny design: one point, one worker."""
    out = tmp_path / "s"
    assert main(["explore", str(tiny["model"]), "--target", "ecp5-25k", "--pe", "1", "--freq", "50",
                 "--workers", "1", "--no-progress", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 point(s) run" in printed and "0 failed" in printed
    doc = json.loads((out / "explore.json").read_text())
    (row,) = doc["points"]
    point = out / "points" / "pe1-seed1-50MHz"
    assert row["status"] == "ok" and row["point_dir"] == str(point.resolve())
    synth = json.loads((point / "synth_report.json").read_text())
    assert row["lut4"] == synth["resources"]["LUT4"]["used"] > 10
    logged = re.findall(r"Max frequency for clock '[^']+': ([\d.]+) MHz", (point / "pnr.log").read_text())
    assert row["fmax_mhz"] == pytest.approx(float(logged[-1]), abs=0.01)
    assert row["frames_per_second"] == pytest.approx(row["fmax_mhz"] * 1e6 / row["cycles_per_frame"], rel=1e-3)
    assert (point / "top.bit").is_file() and (point / "report.html").is_file()
    assert doc["best"][0]["command"].startswith(f"hwgen build {tiny['model']} --pe 1 --target ecp5-25k --clock 50")
    assert doc["command"] == (f"hwgen explore {tiny['model']} --target ecp5-25k --pe 1 --seeds 1 --clock 50 "
                              f"--workers 1 -o {out}")


@pytest.mark.slow
def test_real_sweep_on_two_workers_equals_a_serial_run(tiny: dict, tmp_path: Path) -> None:
    """3 foldings x 2 seeds through Yosys + nextpnr: two workers give what one worker gives."""
    results = {}
    for workers in (1, 2):
        with dask_client(workers=workers) as c:
            outcome = run_sweep(tiny["spec"], sweep_dir(tiny, tmp_path / f"w{workers}"), c)
        assert not outcome.failed, outcome.failed
        results[workers] = same_results(outcome.rows)
    assert results[1] == results[2]


def test_an_existing_scheduler_by_its_address(tiny: dict, tmp_path: Path) -> None:
    """--scheduler: the sweep runs on a cluster started elsewhere (here: another LocalCluster on loopback)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0") as lc:
        with dask_client(scheduler=lc.scheduler_address) as c:
            outcome = run_sweep(tiny["spec"], sweep_dir(tiny, tmp_path / "s"), c, synthesise_fn=estimated_synth)
    assert outcome.ran == 6 and not outcome.failed
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        with dask_client(scheduler="tcp://127.0.0.1:9"):
            pass
