"""The compiler (DESIGN.md section 2, step 1 of the pipeline): a trained checkpoint -> the integer IR.

* :mod:`hwgen.compile.stages`: the checkpoint (architecture JSON + weights) read into float stages, no model code.
* :mod:`hwgen.compile.fold`: the folding passes, BatchNorm, scales, sign and residual joins into integer thresholds.
* :mod:`hwgen.compile.ir`: the integer IR of a streaming binary network, a graph of nodes (what the hardware computes).
* :mod:`hwgen.compile.kinds`: one module per node kind (conv, pool, join): its golden arithmetic, checks,
  ``.hwir`` entry, flips and cost row, found through the node's type.
* :mod:`hwgen.compile.golden`: the integer golden model, bit for bit what the hardware computes.
* :mod:`hwgen.compile.artifact`: the ``.hwir`` file, loadable without executing code.
* :mod:`hwgen.compile.compiler`: the pass pipeline; :mod:`hwgen.compile.verify`: PyTorch against golden.
* :mod:`hwgen.compile.report`: the per-layer cost table and the verification summary.
"""
