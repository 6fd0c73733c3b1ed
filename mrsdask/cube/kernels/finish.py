"""Accumulators to SCI, ERR, DQ and WMAP planes in one compiled pass (official definitions).

Per voxel, with ``f, w, v, n`` the flux, weight, variance and count sums:

* ``w > 0``: SCI ``f / w`` (0 if ``n == 0``), ERR ``sqrt(v / (w w))`` (0 if ``n == 0``), DQ 0;
* otherwise SCI and ERR NaN and DQ ``hole`` (``NON_SCIENCE_HOLE``);
* WMAP ``n``; SCI, ERR and WMAP as float32 (rounded from the float64 results).

The same operations as the numpy expressions they replace (one pass instead of a dozen
temporaries, and without the GIL), so the planes are the same to the bit.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def finish_accumulators(acc, hole, sci, err, dq, wmap, ngood):  # pragma: no cover - compiled
    """Fill ``sci, err, dq, wmap`` (nz, ny, nx) and ``ngood`` (nz: voxels with DQ 0) from
    ``acc`` (nz, ny, nx, 4): the interleaved flux, weight, variance and count sums."""
    nz, ny, nx = acc.shape[0], acc.shape[1], acc.shape[2]
    for z in range(nz):
        good = 0
        for y in range(ny):
            for x in range(nx):
                f = acc[z, y, x, 0]
                w = acc[z, y, x, 1]
                v = acc[z, y, x, 2]
                n = acc[z, y, x, 3]
                wmap[z, y, x] = np.float32(n)
                if w > 0:
                    if n > 0:
                        sci[z, y, x] = np.float32(f / w)
                        err[z, y, x] = np.float32(np.sqrt(v / (w * w)))
                    else:
                        sci[z, y, x] = np.float32(0.0)
                        err[z, y, x] = np.float32(0.0)
                    dq[z, y, x] = 0
                    good += 1
                else:
                    sci[z, y, x] = np.float32(np.nan)
                    err[z, y, x] = np.float32(np.nan)
                    dq[z, y, x] = hole
        ngood[z] = good
