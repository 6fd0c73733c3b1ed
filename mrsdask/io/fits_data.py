"""Image values as the bytes of a FITS data part: big-endian, unsigned integers offset by BZERO.

An s3d cube's four images are written plane block by plane block beside the slab tasks (the
write-behind thread of :mod:`mrsdask.cube.write_behind`, and :func:`mrsdask.cube.export.write_s3d`).
numpy's ``byteswap`` holds the GIL for the whole array: on the 6-exposure multi cube (785 MB
of image data) ~0.25 s of GIL time taken from the threads computing the slabs. The kernel here
does the offset and the swap in one pass, in place, with the GIL released. (A command that
writes s3d files therefore imports numba, ~0.3 s, where it does not already.)
"""

from __future__ import annotations

import numba
import numpy as np

#: BZERO of a uint32 image: FITS stores it as int32 ``u - 2**31``.
UINT32_BZERO = 2**31


@numba.njit(nogil=True, cache=True)
def _swap_words(words: np.ndarray, flip: np.uint32) -> None:
    """``words`` (uint32, 1-D) XOR ``flip``, then byte-reversed, in place."""
    for i in range(words.size):
        w = words[i] ^ flip
        words[i] = (((w >> np.uint32(24)) & np.uint32(0xFF)) | ((w >> np.uint32(8)) & np.uint32(0xFF00))
                    | ((w << np.uint32(8)) & np.uint32(0xFF0000)) | (w << np.uint32(24)))


def fits_image_data(block: np.ndarray, dtype, inplace: bool = False) -> np.ndarray:
    """``block`` as the values of a FITS image of ``dtype`` (float32 or uint32), big-endian.

    float32 is stored as it is (BITPIX -32); uint32 as int32 ``u - 2**31`` (BITPIX 32 with
    BZERO = 2**31), which in two's complement is the top bit flipped.

    Parameters
    ----------
    block : numpy.ndarray
        The values.
    dtype : numpy dtype
        ``float32`` or ``uint32``: the image's type.
    inplace : bool
        Convert ``block`` itself when it is a writeable C-contiguous array of ``dtype`` (no
        copy; its values are then the FITS bytes); otherwise a converted copy is returned.

    Returns
    -------
    numpy.ndarray
        ``>f4`` or ``>i4`` values, the same shape as ``block``.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.uint32)):
        raise ValueError(f"FITS image data of {dtype}: only float32 and uint32 are written")
    if not (inplace and block.dtype == dtype and block.flags.c_contiguous and block.flags.writeable):
        block = np.array(block, dtype=dtype, order="C")
    if block.size:
        _swap_words(block.reshape(-1).view(np.uint32), np.uint32(UINT32_BZERO if dtype == np.uint32 else 0))
    return block.view((">i4" if dtype == np.uint32 else ">f4"))
