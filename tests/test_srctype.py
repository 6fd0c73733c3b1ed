"""Source type decided as the official SourceTypeStep decides it: one test per rule (issue 18, item 2)."""

from __future__ import annotations

import warnings
from collections import ChainMap

import pytest
from astropy.io import fits

from mrsdask.errors import ParameterError
from mrsdask.srctype import decide_source_type


def _official_and_header(tmp_path, user=None, **meta):
    """The official step's decision on a small MIR_MRS model, and the primary header of that model's file."""
    from stdatamodels.jwst.datamodels import IFUImageModel

    from mrsdask.instrument.reference import disable_crds_context_lookup

    disable_crds_context_lookup()
    from jwst.srctype import SourceTypeStep

    model = IFUImageModel((4, 4))
    model.meta.exposure.type = "MIR_MRS"
    model.meta.instrument.name = "MIRI"
    for path, value in meta.items():
        obj = model.meta
        *parents, leaf = path.split(".")
        for p in parents:
            obj = getattr(obj, p)
        setattr(obj, leaf, value)
    path = str(tmp_path / "m_cal.fits")
    model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = SourceTypeStep(source_type=user.upper() if user else None).run(IFUImageModel(path))
    return result.meta.target.source_type, ChainMap(fits.getheader(path, 0), fits.getheader(path, "SCI"))


@pytest.mark.parametrize("rule, user, meta, expected", [
    ("user", "point", {"target.source_type_apt": "EXTENDED", "observation.bkgdtarg": True}, "POINT"),
    ("user", "extended", {"target.source_type_apt": "POINT"}, "EXTENDED"),
    ("background target", None, {"observation.bkgdtarg": True, "target.source_type_apt": "POINT"}, "EXTENDED"),
    ("TSO", None, {"visit.tsovisit": True, "exposure.nints": 5, "target.source_type_apt": "EXTENDED"}, "POINT"),
    ("APT", None, {"target.source_type_apt": "POINT", "dither.optimized_for": "EXTENDED-SOURCE"}, "POINT"),
    ("APT", None, {"target.source_type": "POINT"}, "POINT"),  # no SRCTYAPT: SRCTYPE holds the APT value
    ("dither pattern", None, {"target.source_type_apt": "UNKNOWN", "dither.optimized_for": "POINT-SOURCE"}, "POINT"),
    ("default", None, {"target.source_type_apt": "UNKNOWN", "dither.optimized_for": "EXTENDED-SOURCE"}, "EXTENDED"),
    ("default", None, {"visit.tsovisit": True, "exposure.nints": 1}, "EXTENDED"),  # one integration: not TSO
])
def test_each_rule_decides_as_the_official_step(tmp_path, rule, user, meta, expected):
    official, header = _official_and_header(tmp_path, user, **meta)
    assert official == expected
    assert decide_source_type(header, user) == (expected, rule)


def test_the_detector_data_and_the_cube_carry_the_decision(sim_1a):
    from mrsdask.io.detector_store import open_cal
    from mrsdask.srctype import override_source_type

    ds = open_cal([str(p) for p in sim_1a.cal_files])
    headers = [ChainMap(fits.getheader(p, 0), fits.getheader(p, "SCI")) for p in sim_1a.cal_files]
    expected = [decide_source_type(h) for h in headers]
    assert list(zip(ds["source_type"].values, ds["source_type_rule"].values)) == expected
    forced = override_source_type(ds, "point")
    assert set(forced["source_type"].values) == {"POINT"} and set(forced["source_type_rule"].values) == {"user"}
    with pytest.raises(ParameterError, match="choose point or extended"):
        override_source_type(ds, "diffuse")
