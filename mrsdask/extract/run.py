"""Entry point: spectra of the cubes in a store, written as ``x1d`` FITS files."""

from __future__ import annotations

import dask

from mrsdask.extract.parameters import ExtractionParameters, default_parameters, read_extract1d
from mrsdask.extract.spectrum import extract_spectrum


def x1d_path(folder: str, prefix: str, name: str) -> str:
    """Official-style file name of the spectrum of cube ``name``: ``{prefix}_{name}_x1d.fits``."""
    from mrsdask.io.outputs import join

    return join(folder, f"{prefix}_{name}_x1d.fits")


def check_extraction(store: str, names: list[str], *, source_type: str | None = None,
                     center: tuple[float, float] | None = None, rscale: float | None = None) -> None:
    """Check that every cube opens (complete, whole) and takes the aperture options; no data read.

    Raises
    ------
    MrsdaskError
        Naming the cube and what is wrong (see :func:`mrsdask.extract.spectrum.check_aperture_options`).
    """
    from mrsdask.cube.build import open_cube
    from mrsdask.extract.spectrum import check_aperture_options

    for name in names:
        cube = open_cube(store, name)
        cube.attrs["cube"] = name
        check_aperture_options(cube, str(source_type or cube.attrs.get("source_type") or "POINT"), center, rscale)


def extract_cubes(
    store: str,
    names: list[str],
    folder: str,
    prefix: str,
    *,
    extract1d: str | None = None,
    source_type: str | None = None,
    center: tuple[float, float] | None = None,
    rscale: float | None = None,
    residual_fringe: bool = False,
    bkg_sigma_clip: float = 3.0,
    announce=print,
    overwrite: bool = False,
) -> list[str]:
    """Extract one spectrum per cube and write each as an ``x1d`` file.

    Parameters
    ----------
    store : str
        Cube store (path or URL).
    names : list of str
        Cubes to extract; each must be complete.
    folder, prefix : str
        Output folder (created) or ``s3://`` prefix, and the start of the file names.
    extract1d : str, optional
        Official EXTRACT1D (IFU) reference file; default the documented apertures.
    source_type, center, rscale, residual_fringe
        See :func:`mrsdask.extract.extract_spectrum`.
    bkg_sigma_clip : float
        Clipping threshold of the background statistics.
    overwrite : bool
        Replace existing files that mrsdask did not write (files it wrote, ``ORIGIN =
        'mrsdask'``, are replaced anyway). The folder and files are checked before any work.

    Returns
    -------
    list of str
        The files written.
    """
    from dataclasses import replace

    from mrsdask.cube.build import open_cube
    from mrsdask.io import outputs
    from mrsdask.io.x1d import write_x1d

    outputs.check_output_folder(folder, "x1d folder")
    files = [x1d_path(folder, prefix, name) for name in names]
    outputs.check_output_files(files, overwrite, own=outputs.is_mrsdask_fits)

    check_extraction(store, names, source_type=source_type, center=center, rscale=rscale)
    params: ExtractionParameters = read_extract1d(extract1d, bkg_sigma_clip) if extract1d else \
        replace(default_parameters(), bkg_sigma_clip=bkg_sigma_clip)
    spectra = [extract_spectrum(open_cube(store, name), params, source_type=source_type, center=center,
                                rscale=rscale, residual_fringe=residual_fringe) for name in names]
    spectra = dask.compute(*spectra)  # all cubes' slabs in one graph, in parallel
    outputs.make_folder(folder)
    written = []
    for name, spectrum, path in zip(names, spectra, files):
        spectrum.attrs["cube"] = name
        write_x1d(spectrum, path)
        announce(f"  wrote {path} ({spectrum.attrs['source_type'].lower()} source at x={spectrum.attrs['x_center']:g}, "
                 f"y={spectrum.attrs['y_center']:g}: {spectrum.attrs['center_from']})")
        written.append(path)
    return written
