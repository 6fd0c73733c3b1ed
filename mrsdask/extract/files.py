"""Extraction of official ``s3d`` cube files (``mrsdask extract FILE_s3d.fits … --x1d DIR``).

Each file is opened as a cube (:func:`mrsdask.io.s3d.open_s3d`) and extracted exactly as a cube of
a store (:func:`mrsdask.extract.spectrum.extract_spectrum`, with the same request); the 3A
spectrum of a point source is corrected for the spectral leak when the 1B file is among them.
Each spectrum is written next to its name: ``jw…_ch1-short_s3d.fits`` → ``jw…_ch1-short_x1d.fits``.
"""

from __future__ import annotations

import os

from mrsdask.extract.request import ExtractRequest


def x1d_name(s3d: str) -> str:
    """The x1d file name of an s3d file (``…_s3d.fits`` → ``…_x1d.fits``; other names get ``_x1d``)."""
    base = os.path.basename(str(s3d))
    for ending in ("_s3d.fits.gz", "_s3d.fits", ".fits.gz", ".fits"):
        if base.lower().endswith(ending):
            return base[: -len(ending)] + "_x1d.fits"
    return base + "_x1d.fits"


def extract_s3d_files(files: list[str], folder: str, request: ExtractRequest, *, announce=print,
                      overwrite: bool = False) -> list[str]:
    """Extract one spectrum per ``s3d`` file and write each as an ``x1d`` file in ``folder``.

    Parameters
    ----------
    files : list of str
        Local ``s3d`` files (official ``CubeBuildStep`` output or ``mrsdask export``).
    folder : str
        Output folder (created) or ``s3://`` prefix.
    request : ExtractRequest
        The options, as for a store's cubes.
    overwrite : bool
        Replace existing files that mrsdask did not write. Inputs and outputs are checked
        before any work.

    Returns
    -------
    list of str
        The files written.
    """
    from mrsdask.errors import InputError
    from mrsdask.extract.leak import correct_spectra
    from mrsdask.extract.run import spectra, write_spectra
    from mrsdask.io import outputs
    from mrsdask.io.s3d import open_s3d

    outputs.check_output_folder(folder, "x1d folder")
    names = [x1d_name(f) for f in files]
    if len(set(names)) != len(names):
        raise InputError(f"two inputs would write the same x1d file: {sorted(n for n in names if names.count(n) > 1)[0]}")
    paths = [outputs.join(folder, n) for n in names]
    outputs.check_output_files(paths, overwrite, own=outputs.is_mrsdask_fits)
    cubes = {os.path.basename(f): open_s3d(f) for f in files}  # every file checked before any work
    lazy = {name: spectra(cube, request=request) for name, cube in cubes.items()}
    for name, spectrum in lazy.items():
        spectrum.attrs["cube"] = name
    if request.spectral_leak:
        correct_spectra(lazy, request.override_mrsptcorr)
    write_spectra(lazy, paths, folder, announce, named=True)
    return paths
