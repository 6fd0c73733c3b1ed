"""Entry points: :func:`spectra` (lazy spectra of a cube or a store's cubes) and :func:`extract_cubes`
(the same, written as ``x1d`` FITS files: ``mrsdask extract`` and the pipeline ``extract`` step)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from mrsdask.errors import ParameterError
from mrsdask.extract.plan import make_request
from mrsdask.extract.request import ExtractRequest

if TYPE_CHECKING:
    import xarray as xr

    from mrsdask.extract.stored import StoredCube


def x1d_path(folder: str, prefix: str, name: str) -> str:
    """Official-style file name of the spectrum of cube ``name``: ``{prefix}_{name}_x1d.fits``."""
    from mrsdask.io.outputs import join

    return join(folder, f"{prefix}_{name}_x1d.fits")


def complete_cubes(store: str) -> list[str]:
    """Names of the complete cubes of a store, sorted."""
    from mrsdask.cube.store import COMPLETE_ATTR, open_group

    group = open_group(store, mode="r")
    return sorted(k for k in group.group_keys() if not k.startswith("_") and group[k].attrs.get(COMPLETE_ATTR))


def check_extraction(store: str, names: list[str], request: ExtractRequest, *, direct: bool = False
                     ) -> dict[str, xr.Dataset | StoredCube]:
    """Check that every cube opens (complete, whole) and takes the aperture options; no data read.

    ``direct``: open them for :mod:`mrsdask.extract.stored` (zarr alone, no xarray), for
    :func:`extract_cubes` on an in-process scheduler, when the cubes' arrays allow.

    Returns
    -------
    dict of str to xarray.Dataset (or StoredCube, with ``direct``)
        The cubes, opened (lazy) and checked, by name: give them to :func:`spectra` or
        :func:`extract_cubes` (``cubes=``) so that each cube is opened and its chunks listed once
        (StoredCubes: to ``extract_cubes`` only).

    Raises
    ------
    MrsdaskError
        Naming the cube and what is wrong (see :func:`mrsdask.extract.plan.check_aperture_options`).
    """
    from mrsdask.cube.reader import open_cube
    from mrsdask.extract.plan import check_aperture_options

    if direct:
        from mrsdask.extract.stored import check_stored

        stored = check_stored(store, names, request)
        if stored is not None:
            return stored
    cubes = {}
    for name in names:
        cube = open_cube(store, name)
        cube.attrs["cube"] = name
        check_aperture_options(cube, request)
        cubes[name] = cube
    return cubes


def _given_cubes(cubes: Mapping[str, xr.Dataset], names: list[str] | None) -> dict[str, xr.Dataset]:
    """``names``' cubes (default all) of cubes opened already, refusing a name not among them."""
    if names is None:
        return dict(cubes)
    missing = [name for name in names if name not in cubes]
    if missing:
        raise ParameterError(f"cube(s) {', '.join(missing)} not among the cubes given ({', '.join(cubes) or 'none'}); "
                             "open them with check_extraction, or leave them out of the names")
    return {name: cubes[name] for name in names}


def spectra(cube_or_store: xr.Dataset | str | Mapping[str, xr.Dataset], names: list[str] | None = None, *,
            request: ExtractRequest | None = None, **options) -> xr.Dataset | dict[str, xr.Dataset]:
    """Lazy 1-D spectra, as the official ``Extract1dStep`` (and ``spectral_leak`` for a store's cubes).

    Parameters
    ----------
    cube_or_store : xarray.Dataset, str or dict of str to xarray.Dataset
        One cube (:func:`mrsdask.cube.builder.open_cube`), an official ``s3d`` file
        (:func:`mrsdask.io.s3d.open_s3d`), a cube store (path or URL), or a store's cubes
        opened and checked already (:func:`check_extraction`), by name.
    names : list of str, optional
        Cubes of the store (default: every complete cube, or every cube given).
    request : ExtractRequest, optional
        The options; ``**options`` replace single fields (official names, or the older
        ``source_type``, ``center``, ``rscale``, ``residual_fringe``).

    Returns
    -------
    xarray.Dataset or dict of str to xarray.Dataset
        A cube's spectrum, or each cube's by name, lazy (``.load()`` or ``dask.compute``
        computes them; :func:`mrsdask.io.x1d.write_x1d` writes one). For a store, the 3A spectrum
        of a point source is corrected for the spectral leak when ``spectral_leak`` is on
        (its ``spectral_leak`` attribute says what was done, or why not).
    """
    import xarray as xr

    from mrsdask.extract.leak import correct_spectra
    from mrsdask.extract.parameters import default_parameters, read_extract1d
    from mrsdask.extract.spectrum import extract_spectrum

    request = make_request(request, options)
    params = read_extract1d(request.override_extract1d, request.bkg_sigma_clip) if request.override_extract1d \
        else default_parameters()
    if isinstance(cube_or_store, xr.Dataset):
        return extract_spectrum(cube_or_store, params, request)
    from mrsdask.io.s3d import is_s3d_path, open_s3d

    if isinstance(cube_or_store, Mapping):
        cubes = _given_cubes(cube_or_store, names)
    elif is_s3d_path(str(cube_or_store)):  # an official s3d file: its one cube
        return extract_spectrum(open_s3d(str(cube_or_store)), params, request)
    else:
        store = str(cube_or_store)
        cubes = check_extraction(store, complete_cubes(store) if names is None else list(names), request)
    out = {}
    for name, cube in cubes.items():
        out[name] = extract_spectrum(cube, params, request)
        out[name].attrs["cube"] = name
    if request.spectral_leak:
        correct_spectra(out, request.override_mrsptcorr)
    else:
        for s in out.values():
            s.attrs["spectral_leak"] = "not applied (spectral_leak off)"
    return out


def extract_cubes(
    store: str,
    names: list[str],
    folder: str,
    prefix: str | None = None,
    request: ExtractRequest | None = None,
    *,
    announce=print,
    overwrite: bool = False,
    cubes: Mapping[str, xr.Dataset | StoredCube] | None = None,
    **options,
) -> list[str]:
    """Extract one spectrum per cube and write each as an ``x1d`` file.

    Parameters
    ----------
    store : str
        Cube store (path or URL).
    names : list of str
        Cubes to extract; each must be complete.
    folder : str
        Output folder (created) or ``s3://`` prefix.
    prefix : str, optional
        The start of the file names (default the cubes' product name:
        :func:`mrsdask.cube.reader.output_prefix`).
    request : ExtractRequest, optional
        The options (``**options`` replace single fields); see :func:`spectra`.
    overwrite : bool
        Replace existing files that mrsdask did not write (files it wrote, ``ORIGIN =
        'mrsdask'``, are replaced anyway). The folder and files are checked before any work.
    cubes : dict of str to xarray.Dataset or StoredCube, optional
        ``names``' cubes opened and checked already (:func:`check_extraction`): not opened again.

    The spectra of cubes opened by :func:`check_extraction` with ``direct`` (or, without
    ``cubes``, on an in-process scheduler) are computed without xarray
    (:mod:`mrsdask.extract.stored`): the same files.

    Returns
    -------
    list of str
        The files written.
    """
    from mrsdask.io import outputs

    request = make_request(request, options)
    outputs.check_output_folder(folder, "x1d folder")
    from mrsdask.cube.reader import output_prefix

    from mrsdask.extract import stored
    from mrsdask.scheduling import configured_in_process

    if cubes is not None:
        cubes = _given_cubes(cubes, names)
    elif configured_in_process() is not None:
        cubes = stored.check_stored(store, names, request)
    prefix = output_prefix(store, names, prefix, first=cubes[names[0]] if cubes and names else None)
    files = [x1d_path(folder, prefix, name) for name in names]
    outputs.check_output_files(files, overwrite, own=outputs.is_mrsdask_fits)
    if cubes and all(isinstance(cube, stored.StoredCube) for cube in cubes.values()):
        stored.extract_stored(cubes, files, folder, request, announce)
        return files
    from mrsdask.phases import phase

    with phase("graph"):
        lazy = spectra(cubes, names, request=request) if cubes is not None else spectra(store, names, request=request)
    write_spectra(lazy, files, folder, announce)
    return files


def write_spectra(lazy: dict[str, xr.Dataset], files: list[str], folder: str, announce=print, *,
                  named: bool = False) -> None:
    """Compute lazy spectra together (all cubes' slabs in one graph, in parallel) and write each as
    an ``x1d`` file (``files``, in ``folder``, checked already), announcing what each holds.

    ``named``: each line names the spectrum's cube (``lazy``'s key), e.g. its ``s3d`` file.
    """
    import dask

    from mrsdask.extract.plan import announce_leak, announce_spectrum
    from mrsdask.io import outputs, writer_process
    from mrsdask.phases import phase

    with phase("extraction"):
        computed = dask.compute(*lazy.values())
    outputs.make_folder(folder)
    for name, spectrum, path in zip(lazy, computed, files):
        with phase("x1d write"):
            writer_process.run("write_x1d", spectrum, path)  # mrsdask.io.x1d.write_x1d, perhaps in the writer process
        announce_spectrum(path, spectrum.attrs, announce, f" from {name}" if named else "")
    announce_leak([s.attrs for s in computed], announce)
