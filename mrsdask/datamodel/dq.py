"""Data-quality flags: the jwst pixel bits, with their official names and values.

The values are those of ``stdatamodels.jwst.datamodels.dqflags.pixel`` (checked against it in
the tests), so that a DQ array written by mrsdask means the same to the official pipeline.
Every mrsdask module takes its flags from here.
"""

from __future__ import annotations

from types import MappingProxyType

GOOD = 0
DO_NOT_USE = 2**0
SATURATED = 2**1
JUMP_DET = 2**2
DROPOUT = 2**3
OUTLIER = 2**4
PERSISTENCE = 2**5
AD_FLOOR = 2**6
CHARGELOSS = 2**7
RESERVED = 2**8
NON_SCIENCE = 2**9
DEAD = 2**10
HOT = 2**11
WARM = 2**12
LOW_QE = 2**13
RC = 2**14
TELEGRAPH = 2**15
NONLINEAR = 2**16
BAD_REF_PIXEL = 2**17
NO_FLAT_FIELD = 2**18
NO_GAIN_VALUE = 2**19
NO_LIN_CORR = 2**20
NO_SAT_CHECK = 2**21
UNRELIABLE_BIAS = 2**22
UNRELIABLE_DARK = 2**23
UNRELIABLE_SLOPE = 2**24
UNRELIABLE_FLAT = 2**25
OPEN = 2**26
ADJ_OPEN = 2**27
FLUX_ESTIMATED = 2**28
MSA_FAILED_OPEN = 2**29
OTHER_BAD_PIXEL = 2**30
REFERENCE_PIXEL = 2**31

#: Every flag by its official name, in bit order.
PIXEL = MappingProxyType({name: value for name, value in globals().items()
                          if name.isupper() and isinstance(value, int)})

#: A cube voxel (or detector pixel) without data: ``DO_NOT_USE | NON_SCIENCE`` (513), the value
#: the official ``cube_build`` gives to spaxels no pixel reaches.
NON_SCIENCE_HOLE = DO_NOT_USE | NON_SCIENCE

