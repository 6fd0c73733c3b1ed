"""Where the aperture of a point source goes: auto-centring and the target's proper motion.

* :func:`autocentre` — the official ``ifu_autocen`` method: median image of the cube planes
  below 26 µm (NaN ignored; :func:`median_image`, by bands of rows, so a large cube is not
  read into memory whole, and each chunk read once), ``sigma_clipped_stats`` of it, photutils'
  ``DAOStarFinder`` (``fwhm=3``, ``threshold=3·rms``) on the image minus its clipped median,
  and the centroid of the brightest source found (:func:`brightest_source`).
* :func:`target_at_observation` — the target moved by its proper motion (``MU_RA`` =
  μα·cos δ and ``MU_DEC`` in arcsec/yr, from the catalogue epoch ``MU_EPOCH``) to the mean
  mid-time of the exposures (``EXPMID``, MJD), with astropy's ``SkyCoord.apply_space_motion``.
  The official pipeline places the aperture at ``TARG_RA``/``TARG_DEC`` as given, the
  catalogue-epoch position: for a fast-moving star the aperture misses it.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable

import numpy as np

from mrsdask.cube.memory import format_bytes
from mrsdask.extract.median import spaxel_medians
from mrsdask.io.outputs import write_all_at

log = logging.getLogger(__name__)
#: Planes at and beyond this wavelength (µm) are left out of the auto-centring image (low throughput).
AUTOCEN_MAX_WAVELENGTH = 26.0


#: A band of rows of the auto-centring median holds at most this many bytes of planes;
#: its median needs no copy of them (:func:`mrsdask.extract.median.spaxel_medians`).
AUTOCEN_BAND_BYTES = 256 * 2**20
#: File systems whose files are held in memory: no place for scratch files in bounded memory.
MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})


def median_image(read: Callable[[slice, slice], np.ndarray], n_planes: int, ny: int, nx: int,
                 band_bytes: int = AUTOCEN_BAND_BYTES, plane_chunk: int | None = None,
                 scratch_dir: str | None = None, dtype: np.dtype | type = np.float32) -> np.ma.MaskedArray:
    """The median over planes of each spaxel, NaN ignored, as the official ``ifu_autocen``
    collapses the cube (``np.ma.median`` of the planes, invalid values masked), in bounded memory.

    Planes that fit in ``band_bytes`` are read at once; planes that fit in two bands of rows are
    read by band (each band decodes every chunk). A larger cube is read once, by groups of
    planes of at most half ``band_bytes`` (whole chunks when ``plane_chunk`` is given and
    fits), into one scratch file that holds the planes band after band; each band is then read
    back and collapsed on its own: every chunk is decoded (or downloaded) once, whatever the
    number of bands. Without room for the file in ``scratch_dir`` (or on a file system held in
    memory, such as a tmpfs ``/tmp``), or when it fills the disk, each band reads its rows itself.
    Each spaxel's median is its own, so the image is the same as the whole cube's at once.

    On the 10,125 planes below 26 µm of a 105 x 87 multi cube (370 MB, zstd), read from a
    local store: the median image takes 0.75 s in 2 bands of rows read one after the other,
    0.9-1.8 s with the scratch file; in 6 bands 1.1 s either way; in 12 bands 1.8 s against
    0.8 s, and in 24 bands 3.5 s against 0.7 s.

    Parameters
    ----------
    read : callable
        ``read(planes, rows)`` → those planes' rows (two slices), an array (planes, rows, nx).
    n_planes, ny, nx : int
        Planes to collapse and the image's shape.
    band_bytes : int
        Most bytes of planes held at once (at least one row, or one plane, is read).
    plane_chunk : int, optional
        The planes of one stored chunk: groups of planes are read in multiples of it.
    scratch_dir : str, optional
        Folder of the scratch file (default: :func:`tempfile.gettempdir`, i.e. ``TMPDIR``).
    dtype : numpy.dtype, optional
        The planes' dtype (float32 or float64; other kinds are taken as float64).

    Returns
    -------
    numpy.ma.MaskedArray
        (ny, nx): spaxels without a finite value in any plane are masked.
    """
    work = _working_dtype(np.dtype(dtype))

    def checked(planes: slice, rows: slice) -> np.ndarray:
        block = np.asarray(read(planes, rows))
        expected = (planes.stop - planes.start, rows.stop - rows.start, nx)
        if block.shape != expected:
            raise ValueError(f"planes {planes.start}:{planes.stop}, rows {rows.start}:{rows.stop} read as "
                             f"{block.shape}, expected {expected}")
        return block

    rows = max(1, int(band_bytes) // max(1, n_planes * nx * work.itemsize))
    bands = [slice(y0, min(ny, y0 + rows)) for y0 in range(0, ny, rows)]
    if len(bands) <= 1:
        return _official_median(checked(slice(0, n_planes), slice(0, ny)))
    nbytes = n_planes * ny * nx * work.itemsize
    base = scratch_dir or tempfile.gettempdir()
    scratch, why = _scratch_folder(base, nbytes) if len(bands) > 2 else (None, "")
    if scratch is not None:
        step = max(1, int(band_bytes) // 2 // (ny * nx * work.itemsize))
        if plane_chunk and plane_chunk <= step:
            step = step // plane_chunk * plane_chunk
        log.info("auto-centring: the median image of %d planes in %d bands of %d rows, read once by %d planes "
                 "into a scratch file of %s in %s", n_planes, len(bands), rows, step, format_bytes(nbytes), scratch.name)
        try:
            with scratch:
                return _median_through_file(checked, os.path.join(scratch.name, "bands.bin"), bands, n_planes,
                                            nx, step, work)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            why = f": the scratch file filled {base} ({exc.strerror}); set TMPDIR to a larger folder"
    (log.warning if why else log.info)(  # without the file, the time grows with the square of the size
        "auto-centring: the median image of %d planes in %d bands of %d rows, each band reading every plane%s",
        n_planes, len(bands), rows, why)
    return np.ma.concatenate([_official_median(checked(slice(0, n_planes), band)) for band in bands], axis=0)


def _median_through_file(checked: Callable[[slice, slice], np.ndarray], path: str, bands: list[slice],
                         n_planes: int, nx: int, step: int, work: np.dtype) -> np.ma.MaskedArray:
    """:func:`median_image` through one scratch file at ``path``: band ``k``'s planes (``work``
    dtype) at ``offsets[k]``, plane after plane, written by groups of ``step`` planes, each
    band then read back at once."""
    ny = bands[-1].stop
    sizes = [n_planes * (band.stop - band.start) * nx * work.itemsize for band in bands]
    offsets = [0, *np.cumsum(sizes)[:-1].tolist()]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for z0 in range(0, n_planes, step):
            block = checked(slice(z0, min(n_planes, z0 + step)), slice(0, ny))
            for band, offset in zip(bands, offsets):
                part = np.ascontiguousarray(block[:, band], dtype=work)
                write_all_at(fd, part, offset + z0 * part[0].nbytes)
            del block
    finally:
        os.close(fd)
    images = []
    for band, offset in zip(bands, offsets):
        rows = band.stop - band.start
        planes = np.fromfile(path, dtype=work, count=n_planes * rows * nx, offset=offset)
        images.append(_official_median(planes.reshape(n_planes, rows, nx)))
        del planes
    return np.ma.concatenate(images, axis=0)


def _scratch_folder(base: str, nbytes: int) -> tuple[tempfile.TemporaryDirectory | None, str]:
    """A temporary folder in ``base`` for a scratch file of ``nbytes`` (with 10 % and 256 MiB to
    spare), or None and why not (for the log)."""
    kind = _filesystem_type(base)
    if kind in MEMORY_FILESYSTEMS:
        return None, (f": {base} is a {kind}, held in memory, with no room for a scratch file of {format_bytes(nbytes)}; "
                      "set TMPDIR to a folder on disk")
    try:
        if shutil.disk_usage(base).free < nbytes * 1.1 + 2**28:
            return None, f": no room for a scratch file of {format_bytes(nbytes)} in {base}; set TMPDIR to a larger folder"
        return tempfile.TemporaryDirectory(prefix="mrsdask-autocen-", dir=base), ""
    except OSError as exc:
        return None, f": no scratch folder in {base} ({exc.strerror or exc}); set TMPDIR to a folder with room"


def _filesystem_type(path: str) -> str | None:
    """The type of the file system that holds ``path`` (its deepest mount point in
    ``/proc/self/mounts``), or None where that is not known (not Linux)."""
    try:
        with open("/proc/self/mounts") as fobj:
            lines = fobj.read().splitlines()
    except OSError:
        return None
    path = os.path.realpath(path)
    best, kind = "", None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[1])  # "\040" is a space
        inside = path == mount or path.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, fields[2]
    return kind


def _working_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype the median works in: float32 or float64 in this machine's byte order."""
    if dtype.kind == "f" and dtype.itemsize in (4, 8):
        return dtype.newbyteorder("=")
    return np.dtype(np.float64)


def _official_median(planes: np.ndarray) -> np.ma.MaskedArray:
    """``np.ma.median(np.ma.masked_invalid(planes), axis=0)``, data and mask, ~15x faster.

    The masked median sorts every spaxel's planes with a mask beside them (11 s and 2.8 GB for
    the 10,125 planes of a 105 x 87 multi cube), ``np.nanmedian`` loops over the spaxels in
    Python (4.9 s); :func:`mrsdask.extract.median.spaxel_medians` selects each spaxel's middle
    finite values in compiled code, on every core (0.3 s on 2), and takes their mean as the
    masked median does, in the planes' dtype: the same numbers. Spaxels without a finite value
    are masked with the masked median's own data under the mask: 0, the sum of no value
    (``np.ma.sum`` fills masked values with 0), halved. It matters because DAOStarFinder may
    read the data under the mask; ``tests/extract/test_position.py`` holds both to
    ``np.ma.median``. Planes other than float32 or float64 in native byte order are taken as
    float64 (a byte-swapped float32 as native float32).
    """
    planes = np.asarray(planes)
    work = _working_dtype(planes.dtype)
    median, empty = spaxel_medians(planes if planes.dtype == work else planes.astype(work))
    median[empty] = 0
    return np.ma.masked_array(median, mask=empty)


def load_source_finder() -> None:
    """Import what :func:`brightest_source` uses (photutils, astropy.stats: ~0.6 CPU-s the first
    time in a process); a caller runs it in a thread while the median image is read and computed,
    which leaves the GIL free most of the time. A failure is left for :func:`brightest_source` to meet."""
    try:
        import astropy.stats  # noqa: F401
        import photutils.detection  # noqa: F401
    except Exception as exc:  # reported where the import is needed
        log.debug("loading the source finder failed: %s", exc)


def brightest_source(collapse: np.ma.MaskedArray) -> tuple[float, float] | None:
    """Centroid of the brightest source in a median image (:func:`median_image`), the official way.

    ``sigma_clipped_stats`` of the image, then photutils' DAOStarFinder (``fwhm=3``,
    ``threshold=3·rms``) on the image less its clipped median.

    Parameters
    ----------
    collapse : numpy.ma.MaskedArray
        (ny, nx) median image; masked spaxels have no data.

    Returns
    -------
    tuple of float or None
        (x, y), 0-based spaxels; None when DAOStarFinder finds nothing, or the image has no
        unmasked spaxel (the official step then uses the target position; on such an image it
        stops with photutils' error instead).
    """
    if np.ma.count(collapse) == 0:
        return None
    from astropy.stats import sigma_clipped_stats
    from photutils.detection import DAOStarFinder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # photutils' "no sources" warning
        _, median, rms = sigma_clipped_stats(collapse)
        sources = DAOStarFinder(fwhm=3.0, threshold=3 * rms)(collapse - median)
    if sources is None or len(sources) == 0:
        return None
    brightest = sources[int(np.argmax(sources["flux"].value))]
    xname = "x_centroid" if "x_centroid" in sources.colnames else "xcentroid"
    yname = "y_centroid" if "y_centroid" in sources.colnames else "ycentroid"
    return float(brightest[xname]), float(brightest[yname])


def autocentre(planes: np.ndarray) -> tuple[float, float] | None:
    """Centroid (x, y; 0-based spaxels) of the brightest source in the median of ``planes``, or None.

    Parameters
    ----------
    planes : numpy.ndarray
        (n, ny, nx) SCI planes below :data:`AUTOCEN_MAX_WAVELENGTH`, as stored (float32).

    Returns
    -------
    tuple of float or None
        None when DAOStarFinder finds nothing (the official step then uses the target position).
    """
    n, ny, nx = planes.shape
    return brightest_source(median_image(lambda z, y: planes[z, y], n, ny, nx, dtype=planes.dtype))


def has_proper_motion(attrs: dict) -> bool:
    """The cube carries a usable proper motion: MU_RA, MU_DEC, MU_EPOCH and EXPMID, not both motions 0."""
    mu = [attrs.get("mu_ra", np.nan), attrs.get("mu_dec", np.nan)]
    try:
        mu = [float(m) for m in mu]
        mid = float(attrs.get("expmid", np.nan))
    except (TypeError, ValueError):
        return False
    return (all(math.isfinite(m) for m in mu) and any(m != 0 for m in mu) and math.isfinite(mid)
            and bool(str(attrs.get("mu_epoch", "") or "").strip()))


def _epoch(text: str):
    """MU_EPOCH as an astropy Time: an ISO date/time (UT), or a Julian year such as ``2000`` / ``J2000.0``."""
    from astropy.time import Time

    text = str(text).strip()
    try:
        return Time(float(text.lstrip("J")), format="jyear", scale="utc")
    except ValueError:
        return Time(text, scale="utc")


def target_at_observation(ra: float, dec: float, attrs: dict) -> tuple[float, float, str]:
    """The target (RA, Dec; deg) moved from MU_EPOCH to the exposures' mean mid-time, and a description.

    Raises
    ------
    ValueError
        If MU_EPOCH cannot be read as a date or a Julian year.
    """
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from astropy.time import Time

    epoch = _epoch(attrs["mu_epoch"])
    mid = Time(float(attrs["expmid"]), format="mjd", scale="utc")
    coord = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, pm_ra_cosdec=float(attrs["mu_ra"]) * u.arcsec / u.yr,
                     pm_dec=float(attrs["mu_dec"]) * u.arcsec / u.yr, obstime=epoch, frame="icrs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ERFA "dubious year" for future dates
        moved = coord.apply_space_motion(new_obstime=mid)
    years = (mid - epoch).to_value(u.yr)
    shift = coord.separation(moved).to_value(u.arcsec)
    text = (f"moved {shift:.3f} arcsec by MU_RA={float(attrs['mu_ra']):g}, MU_DEC={float(attrs['mu_dec']):g} "
            f"arcsec/yr over {years:.2f} yr (MU_EPOCH {attrs['mu_epoch']} to EXPMID {float(attrs['expmid']):.5f})")
    return float(moved.ra.deg), float(moved.dec.deg), text
