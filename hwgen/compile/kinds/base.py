"""What the compile side knows of an IR node type: the interface each kind implements.

A kind is found through the node's Python type (:func:`hwgen.compile.kinds.kind_of`)
or, in a ``.hwir`` file, through its entry's ``"type"`` (:func:`hwgen.compile.kinds.kind_named`).
Its hardware side (engine, folding, cost, report columns) is the stage of the same
node type in :mod:`hwgen.hw.stages`.

What an input or output stream carries is one of the *value kinds*
``"uint8"`` (the network's pixels), ``"binary"`` (bits), ``"acc"`` (a conv's
integer accumulator, :class:`~hwgen.compile.ir.AccumulatorOutput`) and
``"scores"`` (the last layer's class scores).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import numpy as np

#: ``keep(key, array)``: records an intermediate array of :func:`hwgen.compile.golden.run_network`.
Keep = Callable[[str, np.ndarray], None]


class FloatModules(Protocol):
    """The float model's modules by name, as :mod:`hwgen.compile.verify` sees them."""

    def first_pool(self, names: list[str]) -> str | None:
        """The first of ``names`` that is a max-pool module (None: none is)."""

    def first_batchnorm(self, names: list[str]) -> str:
        """The first of ``names`` that is a BatchNorm module ("" : none is)."""


class NodeKind:
    """The compile-side facts of one IR node type.

    Subclasses set the class attributes and implement every method; no code
    outside the kind's module branches on the node's type.

    Attributes
    ----------
    node_type : type
        The IR dataclass (:mod:`hwgen.compile.ir`).
    type_name : str
        The ``"type"`` of its ``.hwir`` entry.
    arity : int
        How many inputs it reads (a join: main accumulator, shortcut bits).
    """

    node_type: type
    type_name: str
    arity: int

    # -- the golden model ------------------------------------------------------

    def check(self, node, kinds: list[str], last: bool) -> None:
        """CompileError unless the node's own fields are consistent and its inputs give ``kinds``
        (one value kind per input); ``last``: it is the network's last node."""
        raise NotImplementedError

    def produces(self, node) -> str:
        """The value kind of the node's output."""
        raise NotImplementedError

    def evaluate(self, node, args: list[np.ndarray], keep: Keep) -> np.ndarray:
        """The node's output on channel-last inputs ``args`` (N, H, W, C) (scores: (N, classes));
        ``keep`` records intermediates other than the output (a conv's accumulator)."""
        raise NotImplementedError

    # -- the .hwir file ----------------------------------------------------------

    def write(self, node, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        """The node's JSON entry (``type``, ``name``, scalar fields; not ``inputs``), its arrays added
        to ``arrays`` under ``f"{name}/..."``."""
        raise NotImplementedError

    def read(self, entry: dict[str, Any], arrays: dict[str, np.ndarray]):
        """The node of a JSON entry written by :meth:`write` (``inputs`` included)."""
        raise NotImplementedError

    # -- passes and reports --------------------------------------------------------

    def compared_accumulator(self, node) -> tuple[str, np.ndarray] | None:
        """(name of the conv whose accumulator the node's thresholds compare, their directions (C[, H, W])),
        or None when the node has no thresholds."""
        return None

    def flip(self, node, flips: dict[str, np.ndarray]):
        """The node after negating, per conv name in ``flips``, the channels marked True (bool (C,)):
        the conv's weights and every threshold that compares its accumulator (:mod:`hwgen.compile.fold`)."""
        return node

    def report_row(self, node) -> dict[str, Any]:
        """The node's row of the cost table (:func:`hwgen.compile.report.layer_rows`)."""
        raise NotImplementedError

    def float_output(self, node, modules: FloatModules) -> tuple[str, str, str] | None:
        """Where the float model has the pre-activation ``u`` whose sign is this node's bits:
        (golden intermediate key, module name whose output is u, BatchNorm module name or ""),
        or None when the node's output has no float counterpart (:mod:`hwgen.compile.verify`)."""
        return None
