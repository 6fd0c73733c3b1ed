"""The kernel's results of a cube's slabs as one table: what each slab task returns, joined.

:func:`slab_sums` is the task of one slab (:func:`mrsdask.extract.kernels.extract_slab`, its
float64 sums in one table); :func:`join_slabs` puts the slabs' tables end to end and gives the
per-plane sums by name, for :func:`mrsdask.extract.plan.spectrum_columns`. No Dask here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mrsdask.extract.kernels import OUTPUTS, extract_slab

#: The kernel's float64 sums per plane (its outputs but ``dq``), the rows of :func:`slab_sums`' table.
SUMS = tuple(name for name in OUTPUTS if name != "dq")


def slab_sums(*args, **kwargs) -> dict[str, np.ndarray]:
    """:func:`~mrsdask.extract.kernels.extract_slab` on a slab, its float64 sums stacked in one
    ``(len(SUMS), planes)`` table (``sums``), and ``dq``: two arrays per slab for Dask to pick
    from the task's result instead of seven."""
    columns = extract_slab(*args, **kwargs)
    return {"sums": np.stack([columns[name] for name in SUMS]), "dq": columns["dq"]}


def join_slabs(tables: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The per-plane sums (:data:`~mrsdask.extract.kernels.OUTPUTS`) of consecutive slabs'
    :func:`slab_sums` tables, by name: float64, and ``dq`` uint32."""
    sums = np.concatenate([np.asarray(t["sums"], dtype=np.float64) for t in tables], axis=1)
    col = {name: sums[i] for i, name in enumerate(SUMS)}
    col["dq"] = np.concatenate([np.asarray(t["dq"]).astype(np.uint32, copy=False) for t in tables])
    return col
