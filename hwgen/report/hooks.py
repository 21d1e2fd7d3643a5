"""The one call ``hwgen build``, ``hwgen sim`` and ``hwgen synth`` make as they finish: refresh ``report.html``.

* :func:`refresh_report`: (re)write the build folder's ``report.html``; with
  ``sim_summary`` first record it as ``sim_report.json`` (what ``hwgen sim``
  measured), so the page and later reruns of ``hwgen report`` see it.
* :func:`refreshes_report`: wraps a command whose ``args.build_dir`` is a build
  folder so the page is refreshed even when the command ends in an error after
  writing its reports (``hwgen synth`` on a design that misses timing).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path

from hwgen.errors import HwgenError
from hwgen.report.sources import BUILD_REPORT, SIM_REPORT

__all__ = ["refresh_report", "refreshes_report"]


def refresh_report(build_dir: Path | str, *, sim_summary: dict | None = None, announce: bool = True) -> Path:
    """Write ``build_dir/sim_report.json`` (when ``sim_summary`` is given) and ``build_dir/report.html``;
    print where the page is (``announce``). Returns the page's path."""
    from hwgen.report.build_page import write_build_report

    build_dir = Path(build_dir)
    if sim_summary is not None:
        (build_dir / SIM_REPORT).write_text(json.dumps(sim_summary, indent=1) + "\n")
    page = write_build_report(build_dir)
    if announce:
        print(f"report: {page} (open it in a browser)")
    return page


def refreshes_report(run: Callable) -> Callable:
    """``run(args)``, then :func:`refresh_report` of ``args.build_dir`` if it holds a build report, also when
    ``run`` raised a HwgenError (its error still propagates; a report that cannot be written then is skipped)."""

    @functools.wraps(run)
    def wrapper(args):
        try:
            result = run(args)
        except HwgenError:
            if (Path(args.build_dir) / BUILD_REPORT).is_file():
                try:
                    refresh_report(args.build_dir, announce=False)
                except HwgenError as exc:
                    print(f"hwgen: note: report.html not refreshed: {exc}", file=sys.stderr)
            raise
        if (Path(args.build_dir) / BUILD_REPORT).is_file():
            refresh_report(args.build_dir)
        return result

    return wrapper
