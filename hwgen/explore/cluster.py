"""The Dask client of a sweep: a LocalCluster on loopback, or an existing cluster by its scheduler address.

A LocalCluster has ``workers`` worker processes of one thread each (a
synthesis run is one tool process; more threads per worker would only run
several on the same core budget), listening on 127.0.0.1 only (the scheduler's
HTTP server too, on a free port). A worker process that dies (killed, out of memory) is restarted by
its nanny, and the scheduler gives its task to another worker: Dask counts
such deaths per task and gives up on a task after
``distributed.scheduler.allowed-failures`` (3) of them.

With ``scheduler``, every worker must see the sweep's output folder at the
same path (a shared file system), and have hwgen and the tools installed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from hwgen.errors import ConfigError

__all__ = ["LOOPBACK", "dask_client"]

LOOPBACK = "127.0.0.1"


@contextlib.contextmanager
def dask_client(*, workers: int | None = None, scheduler: str | None = None) -> Iterator:
    """A ``distributed.Client``: on ``scheduler`` (``tcp://HOST:PORT``) or on a new LocalCluster of
    ``workers`` processes on loopback; closed (and the cluster shut down) on exit."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        if workers is not None:
            raise ConfigError("give --workers (a cluster on this machine) or --scheduler (an existing one), not both")
        if "://" not in scheduler:
            raise ConfigError(f"--scheduler takes an address like tcp://HOST:8786, not {scheduler!r}")
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        with client:
            yield client
        return
    if workers is None or workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}")
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host=LOOPBACK,
                           dashboard_address=f"{LOOPBACK}:0", silence_logs=logging.ERROR)
    with cluster, Client(cluster) as client:
        yield client
