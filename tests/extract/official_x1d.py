"""The comparison of an mrsdask spectrum with the official Extract1dStep's, shared by the tests."""

import numpy as np
import pytest

from mrsdask.io.x1d import write_x1d


def assert_same_as_official(official, spectrum, tmp_path) -> str:
    """Write ``spectrum`` as x1d and check it against the official ``spec[0]``: same centre and
    wavelengths, FLUX, SURF_BRIGHT, BACKGROUND and their errors to 1e-6. Returns the x1d path."""
    from stdatamodels.jwst import datamodels

    path = write_x1d(spectrum, str(tmp_path / "mrsdask_x1d.fits"))
    with datamodels.open(path) as model:
        mine = model.spec[0]
        assert (mine.extraction_x, mine.extraction_y) == pytest.approx((official.extraction_x, official.extraction_y),
                                                                       abs=1e-9)
        a, b = official.spec_table, mine.spec_table
        np.testing.assert_array_equal(b["WAVELENGTH"], a["WAVELENGTH"])
        for column in ("FLUX", "SURF_BRIGHT", "BACKGROUND", "FLUX_ERROR", "SB_ERROR", "BKGD_ERROR"):
            np.testing.assert_allclose(b[column], a[column], rtol=1e-6, atol=0, err_msg=column)
    return path
