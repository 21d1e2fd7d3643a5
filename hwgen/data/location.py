"""Where a model's recorded dataset folder is, wherever the command runs from.

A checkpoint records ``data_dir`` as it was given to ``hwgen train`` (the
shipped models: ``../shared/data/mnist``, relative to the project root). A
relative folder is looked for, in order,

1. from the current folder (what the user typed at training time meant);
2. from the model file's folder and each folder above it (so
   ``hwgen eval models/tfc_mnist.ckpt`` finds ``../shared/data/mnist`` from
   the project root, whatever the current folder is).

The first candidate that exists is used. If none does, the error lists every
folder tried and says how to pass ``--data-dir``. An explicit ``--data-dir``
is used as given, never searched.
"""

from __future__ import annotations

import os
from pathlib import Path

from hwgen.errors import DatasetError

__all__ = ["candidate_dirs", "resolve_recorded_data_dir"]


def candidate_dirs(recorded: str | os.PathLike, model_path: str | os.PathLike) -> list[Path]:
    """The folders tried for a recorded ``data_dir``, in order (see the module docstring); no duplicates."""
    recorded = Path(recorded)
    if recorded.is_absolute():
        return [recorded]
    out = [recorded]
    for anchor in Path(os.path.abspath(model_path)).parents:
        candidate = anchor / recorded
        if candidate not in out:
            out.append(candidate)
    return out


def resolve_recorded_data_dir(recorded: str | os.PathLike, model_path: str | os.PathLike) -> Path:
    """The first existing folder of :func:`candidate_dirs`; DatasetError naming the folders tried otherwise."""
    tried = candidate_dirs(recorded, model_path)
    for folder in tried:
        if folder.is_dir():
            return folder
    shown = ", ".join(str(p) for p in tried[:4]) + (f" and {len(tried) - 4} more above" if len(tried) > 4 else "")
    raise DatasetError(f"{model_path} records its dataset folder as {recorded}, which is not there (tried {shown}): "
                       f"pass --data-dir DIR")
