"""The DQ flags of mrsdask are the official jwst ones, name for name and bit for bit."""

from mrsdask.datamodel import dq


def test_dq_flags_are_the_official_ones():
    from stdatamodels.jwst.datamodels import dqflags

    assert dict(dq.PIXEL) == dict(dqflags.pixel)
    assert dq.NON_SCIENCE_HOLE == dqflags.pixel["DO_NOT_USE"] | dqflags.pixel["NON_SCIENCE"] == 513
