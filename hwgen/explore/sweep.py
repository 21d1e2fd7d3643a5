"""The sweep driver: skip finished points, submit builds and syntheses to Dask, collect, write the results.

Layout of the output folder ``DIR``::

    DIR/builds/<folding>-<clock>MHz/     one hwgen build per folding (build.json: its record)
    DIR/points/<folding>-seed<S>-<F>MHz/ one per point: a copy of its build, synthesis outputs,
                                         report.html, point.json (its record, under the point's key)
    DIR/explore.json, explore.csv, explore.html

A point is finished when ``point.json`` holds its key (:func:`~hwgen.explore.spec.point_key`):
a rerun skips it, so an interrupted sweep resumes where it stopped (points
that were running at the interruption run again). Points recorded as failed
are skipped too, unless ``retry_failed``. Each build is one Dask task, each
point one task depending on its build; a task whose worker died is given to
another worker by Dask; one that still fails (``KilledWorker`` after the
allowed retries) is reported as failed without a record, so a rerun tries it
again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hwgen import __version__
from hwgen.errors import ConfigError
from hwgen.explore.spec import Point, SweepSpec, build_key, point_key
from hwgen.explore.tasks import FIELDS, POINT_RECORD, SynthesiseFn, build_folding, read_record, run_point, synthesise

__all__ = ["SweepOutcome", "run_sweep"]


@dataclass
class SweepOutcome:
    """A sweep run: every point's row (spec order; unfinished ones have status ``pending``), counts and time."""

    rows: list[dict]
    skipped: int            #: points already finished before this run
    ran: int                #: points finished in this run
    seconds: float          #: wall time of this run
    interrupted: bool
    document: dict          #: what explore.json holds

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.rows if r["status"] == "failed"]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _pending(point: Point, key: str, point_dir: Path) -> dict:
    row = dict.fromkeys(FIELDS)
    row.update(point=point.name, status="pending", folding=point.folding.option, seed=point.seed,
               freq_mhz=point.freq_mhz, build_clock_mhz=point.build_clock_mhz, key=key, point_dir=str(point_dir))
    return row


def _finished(out: Path, point: Point, key: str) -> dict | None:
    """The point's record if its folder holds one under ``key``."""
    record = read_record(out / "points" / point.name, POINT_RECORD)
    return record if record and record.get("key") == key else None


def run_sweep(spec: SweepSpec, out_dir: Path | str, client, *, synthesise_fn: SynthesiseFn = synthesise,
              retry_failed: bool = False, command: str = "", cluster: str = "",
              on_point: Callable[[dict, int, int], None] | None = None) -> SweepOutcome:
    """Run the sweep ``spec`` on the Dask ``client`` into ``out_dir`` (see the module docstring).

    ``synthesise_fn``: the synthesis step (:data:`~hwgen.explore.tasks.SynthesiseFn`;
    default Yosys + nextpnr + pack). ``on_point(row, done, total)`` is called as
    each point finishes (done counts skipped points too). ``command`` and
    ``cluster`` are recorded in explore.json. A KeyboardInterrupt stops the
    sweep: running tasks are cancelled, the results so far are written and the
    outcome says ``interrupted``.
    """
    from distributed import as_completed

    from hwgen.explore.page import write_explore_page
    from hwgen.explore.results import write_results

    started = time.perf_counter()
    model = Path(spec.model)
    if not model.is_file():
        raise ConfigError(f"no such model file: {model} (give a .ckpt checkpoint or a .hwir IR file)")
    out = Path(out_dir)
    (out / "builds").mkdir(parents=True, exist_ok=True)
    (out / "points").mkdir(parents=True, exist_ok=True)
    digest = _sha256(model)
    points = spec.points()
    keys = {p: point_key(digest, p, spec.target) for p in points}
    rows: dict[Point, dict] = {}
    todo: list[Point] = []
    for p in points:
        record = _finished(out, p, keys[p])
        if record and (record["status"] == "ok" or not retry_failed):
            rows[p] = record
        else:
            todo.append(p)
    skipped = len(rows)
    total = len(points)
    if on_point:
        for done, row in enumerate(rows.values(), 1):
            on_point(row, done, total)

    builds = {}
    futures = {}
    for p in todo:
        if p.build_name not in builds:
            builds[p.build_name] = client.submit(build_folding, str(model.resolve()),
                                                 str((out / "builds" / p.build_name).resolve()), p, spec.target,
                                                 build_key(digest, p, spec.target), pure=False)
        fut = client.submit(run_point, builds[p.build_name], str((out / "points" / p.name).resolve()), p,
                            spec.target, keys[p], synthesise_fn, pure=False)
        futures[fut] = p
    interrupted = False
    ran = 0
    try:
        for fut in as_completed(list(futures)):
            p = futures[fut]
            try:
                row = fut.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker and the like: reported, not recorded
                row = _pending(p, keys[p], out / "points" / p.name)
                row.update(status="failed", error=f"{type(exc).__name__}: {exc} (not recorded: a rerun tries again)")
            rows[p] = row
            ran += 1
            if on_point:
                on_point(row, len(rows), total)
    except KeyboardInterrupt:
        interrupted = True
        client.cancel(list(futures) + list(builds.values()))
    # a task may have finished (and written its record) after the driver stopped listening
    ordered = [rows.get(p) or _finished(out, p, keys[p]) or _pending(p, keys[p], out / "points" / p.name)
               for p in points]
    meta = {"hwgen": __version__, "model": str(spec.model), "model_sha256": digest, "target": spec.target,
            "foldings": [f.option for f in spec.foldings], "seeds": list(spec.seeds),
            "freqs_mhz": list(spec.freqs_mhz), "command": command, "cluster": cluster,
            "points_total": total, "points_skipped": skipped, "points_run": ran,
            "wall_s": round(time.perf_counter() - started, 2), "interrupted": interrupted}
    document = write_results(out, ordered, meta)
    write_explore_page(out, document)
    return SweepOutcome(rows=ordered, skipped=skipped, ran=ran, seconds=time.perf_counter() - started,
                        interrupted=interrupted, document=document)
