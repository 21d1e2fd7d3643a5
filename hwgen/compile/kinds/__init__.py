"""One module per IR node kind: everything the compile side knows of it.

* :mod:`~hwgen.compile.kinds.base`: :class:`NodeKind`, the interface (checks,
  golden evaluation, ``.hwir`` entry, flip pass, cost row, float counterpart).
* :mod:`~hwgen.compile.kinds.conv`: :class:`~hwgen.compile.kinds.conv.ConvKind`
  (convolution / fully connected; XNOR-popcount and exact integer MACs, thresholds, scores).
* :mod:`~hwgen.compile.kinds.pool`: :class:`~hwgen.compile.kinds.pool.PoolKind` (OR / AND max-pool of bits).
* :mod:`~hwgen.compile.kinds.join`: :class:`~hwgen.compile.kinds.join.JoinKind` (residual join, threshold pairs).
* :mod:`~hwgen.compile.kinds.thresholds`: threshold outputs, shared by conv and join.

The golden model (:mod:`hwgen.compile.golden`), the ``.hwir`` reader and
writer (:mod:`hwgen.compile.artifact`), the flip pass (:mod:`hwgen.compile.fold`),
the cost table (:mod:`hwgen.compile.report`) and the float comparison
(:mod:`hwgen.compile.verify`) ask :func:`kind_of` the node's kind. The
hardware side of a kind is its stage in :mod:`hwgen.hw.stages`. A new kind
is an IR dataclass, a module here and a stage there (plus its engine).
"""

from __future__ import annotations

from hwgen.compile.kinds.base import NodeKind
from hwgen.compile.kinds.conv import ConvKind
from hwgen.compile.kinds.join import JoinKind
from hwgen.compile.kinds.pool import PoolKind
from hwgen.errors import CompileError

__all__ = ["KINDS", "NodeKind", "kind_named", "kind_of"]

#: The kind of each IR node type.
KINDS: dict[type, NodeKind] = {kind.node_type: kind for kind in (ConvKind(), PoolKind(), JoinKind())}
_BY_NAME = {kind.type_name: kind for kind in KINDS.values()}


def kind_of(node) -> NodeKind:
    """The kind of an IR node; CompileError for a type that is none."""
    kind = KINDS.get(type(node))
    if kind is None:
        raise CompileError(f"unknown layer type {type(node).__name__}")
    return kind


def kind_named(type_name: str) -> NodeKind:
    """The kind whose ``.hwir`` entries have ``"type": type_name``; CompileError for an unknown one."""
    kind = _BY_NAME.get(type_name)
    if kind is None:
        raise CompileError(f"unknown layer type {type_name!r} (one of {', '.join(sorted(_BY_NAME))})")
    return kind
