"""Per-slab weighting kernels: pure numpy/numba, no Dask, no WCS objects.

Every kernel adds the contributions of a set of detector pixels to four accumulators over
one wavelength slab of the cube, ``(nz, ny, nx)`` float64 arrays:

* ``flux_sum``   = Σ wᵢ fᵢ
* ``weight_sum`` = Σ wᵢ
* ``var_sum``    = Σ (wᵢ σᵢ)²
* ``count``      = Σ 1 (pixels with wᵢ > 0)

Because the sums are linear, slabs, exposures and pixel batches can be processed in any
order and added.
"""

from mrsdask.cube.kernels.drizzle import drizzle_accumulate
from mrsdask.cube.kernels.pointcloud import emsm_accumulate, msm_accumulate
from mrsdask.cube.kernels.polygon import clipped_area

__all__ = ["clipped_area", "drizzle_accumulate", "emsm_accumulate", "msm_accumulate"]
