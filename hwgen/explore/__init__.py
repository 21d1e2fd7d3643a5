"""``hwgen explore``: folding x clock x seed sweeps of synthesis on a Dask cluster.

* :mod:`hwgen.explore.spec`: the sweep as typed data (foldings, seeds, clocks,
  points) and the hash that names each point's inputs;
* :mod:`hwgen.explore.tasks`: what runs on a worker: build one folding,
  synthesise one point (the synthesis function is a parameter);
* :mod:`hwgen.explore.cluster`: a Dask client on a LocalCluster (loopback) or an existing scheduler;
* :mod:`hwgen.explore.sweep`: the driver: skip finished points, submit the rest, collect;
* :mod:`hwgen.explore.results`: ``explore.json`` / ``.csv``, the Pareto front, the best point per criterion;
* :mod:`hwgen.explore.page`: ``explore.html``;
* :mod:`hwgen.explore.command`: the CLI.
"""
