"""Spectra of a store's cubes as a plain Dask graph: one task per slab reads its planes from zarr.

The lazy spectra of :mod:`mrsdask.extract.spectrum` are xarray Datasets of Dask arrays: for a
command that only writes them, xarray, pandas, Dask's array package and astropy's WCS are
~1 CPU-s of imports before the first plane is read, as long as a third of the extraction of a
10,000-plane cube. Here the same kernel tasks (:func:`mrsdask.extract.columns.slab_sums`) read
the cube's zarr arrays themselves and one task joins their sums into the spectrum's columns
(:func:`mrsdask.extract.plan.spectrum_columns`): the same numbers, from the same functions.
The x1d files are then written by the writer process (:mod:`mrsdask.io.writer_process`,
which finds the slit position there), so the command imports neither xarray nor astropy.

It applies to a store's cubes extracted in this process (the ``threads`` or ``synchronous``
scheduler), whatever the options: :func:`mrsdask.extract.run.extract_cubes` takes the lazy
spectra otherwise. ``ifu_autocen`` reads the planes below 26 µm for its median image (a
:class:`StoredCube` array's ``isel``, :func:`mrsdask.extract.position.median_image`: by bands of
rows, each chunk read once) before the slab tasks, and imports astropy's statistics and
photutils for its source finder meanwhile. The 1-D
residual-fringe fit (``ifu_rfcorr``) runs in each cube's joining task and the spectral leak is
removed from the finished columns, by the same functions as the lazy spectra's
(:func:`mrsdask.extract.plan.residual_fringe_fits`, :func:`mrsdask.extract.leak.plan_leak`,
before the extraction, and :func:`~mrsdask.extract.leak.remove_leak_from_columns`): the
defaults of ``mrsdask extract`` take this path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import numpy as np

from mrsdask.extract.plan import (
    RF_APPLIED,
    RF_COLUMNS,
    Aperture,
    announce_leak,
    announce_spectrum,
    aperture_correction,
    apply_factors,
    channel_number,
    check_aperture_options,
    plan_aperture,
    residual_fringe_fits,
    residual_fringe_note,
    residual_fringe_scales,
    resolve_parameters,
    spectrum_attrs,
    spectrum_columns,
)
from mrsdask.extract.request import ExtractRequest

#: The cube arrays the kernel reads.
PLANES = ("sci", "err", "wmap")
LEAK_OFF = "not applied (spectral_leak off)"


#: The dimensions of a cube's arrays, in order (as xarray names them).
DIMS = ("wavelength", "y", "x")


class _Stored:
    """One array of a stored cube, or a selection of it: read on ``.values`` (as an xarray
    variable's), selected by :meth:`isel`."""

    def __init__(self, array, key: tuple = ()):
        self._array = array
        self._key = key
        self.shape = tuple(array.shape) if not key else tuple(
            len(range(*k.indices(n))) if isinstance(k, slice) else len(k) for k, n in zip(key, array.shape))

    def isel(self, **indexers) -> _Stored:
        """The selection of ``indexers`` by dimension (:data:`DIMS`: integer arrays or slices),
        each dimension on its own (as xarray's ``isel``), read on ``.values``."""
        dims = DIMS[:len(self.shape)]
        unknown = set(indexers) - set(dims)
        if unknown or self._key:
            raise ValueError(f"cannot select {sorted(unknown) or 'twice'} in an array of dimensions {dims}")
        if not all(isinstance(k, slice) or np.ndim(k) == 1 for k in indexers.values()):
            raise ValueError(f"cannot select {indexers}: give integer arrays or slices")
        return _Stored(self._array, tuple(indexers.get(dim, slice(None)) for dim in dims))

    @property
    def dtype(self) -> np.dtype:
        """The stored array's dtype."""
        return np.dtype(self._array.dtype)

    @property
    def chunks(self) -> tuple[int, ...]:
        """The stored array's chunk shape (that of the whole array, selected or not)."""
        return tuple(self._array.chunks)

    @property
    def values(self) -> np.ndarray:
        if not self._key:
            return np.asarray(self._array[...])
        return np.asarray(self._array.oindex[self._key])


class StoredCube:
    """The parts of a store's complete cube that the extraction reads, opened with zarr alone:
    ``attrs``, ``sizes`` and ``cube[name].values``, as an xarray cube offers them
    (:mod:`mrsdask.extract.plan`), and the zarr ``arrays`` of :data:`PLANES`.

    Parameters
    ----------
    group : zarr.Group
        The cube's group.
    name : str
        The cube's name in the store.
    """

    def __init__(self, group, name: str):
        self._group = group
        self.name = name
        self.attrs = {**dict(group.attrs), "cube": name}
        self.arrays = {key: group[key] for key in PLANES}
        nz, ny, nx = self.arrays["sci"].shape
        self.sizes = {"wavelength": nz, "y": ny, "x": nx}

    def __getitem__(self, name: str) -> _Stored:
        """The array ``name``, read (and selected) as an xarray variable; a chunk that does not
        decode is named in the error (:func:`mrsdask.io.zarr_damage.naming_damaged_chunks`)."""
        from mrsdask.io.zarr_damage import naming_damaged_chunks

        if name in self.arrays:  # opened so already
            return _Stored(self.arrays[name])
        with naming_damaged_chunks():
            return _Stored(self._group[name])


def _read_as_xarray_would(array) -> bool:
    """Whether xarray would read the array's values as they are stored: floats whose fill value
    is NaN (its masking then changes nothing) and no CF scaling."""
    fill = array.fill_value
    attrs = array.attrs
    return (array.dtype.kind == "f" and fill is not None and bool(np.isnan(fill))
            and not {"scale_factor", "add_offset"} & set(attrs))


def check_stored(store: str, names: list[str], request: ExtractRequest) -> dict[str, StoredCube] | None:
    """:func:`mrsdask.extract.run.check_extraction` for the direct path: each cube opened with
    zarr and checked (complete, whole, the aperture options); None if a cube's arrays are not
    stored as xarray would read them as they are (then open them with ``check_extraction``).

    Raises
    ------
    MrsdaskError
        As ``check_extraction``.
    """
    from mrsdask.cube import store as cube_store
    from mrsdask.cube.reader import check_cube_whole
    from mrsdask.errors import IncompleteStoreError, InputError
    from mrsdask.io.zarr_damage import naming_damaged_chunks
    from mrsdask.io.zarr_store import COMPLETE_ATTR, open_group

    cubes = {}
    for name in names:
        if not cube_store.cube_exists(store, name):
            raise InputError(f"{store}: holds no cube {name!r}")
        group = open_group(cube_store.group_path(store, name), mode="r")
        if not group.attrs.get(COMPLETE_ATTR):
            raise IncompleteStoreError(f"{store}/{name}: cube is incomplete (interrupted build); "
                                       "run the build again to resume")
        check_cube_whole(store, name)
        with naming_damaged_chunks():  # a chunk that zarr reads and cannot decode is named
            cube = StoredCube(group, name)
        if not all(_read_as_xarray_would(a) for a in cube.arrays.values()):
            return None
        check_aperture_options(cube, request)
        cubes[name] = cube
    return cubes


class PlaneFiles:
    """Whole-plane chunks of a local zarr v3 array stored as mrsdask's cube builder writes them
    (little-endian floats, zstd, ``c/<i>/0/0`` files), read and decoded straight from their files:
    the same values as zarr's own reading, at 2/3 of its CPU time (no event loop, no copies).

    Build it with :meth:`of`, which gives None for any other array (read it with zarr then).
    """

    def __init__(self, folder: str, dtype: np.dtype, shape: tuple[int, ...], planes: int, fill: float):
        self.folder, self.dtype, self.shape, self.planes, self.fill = folder, dtype, shape, planes, fill

    @classmethod
    def of(cls, array) -> PlaneFiles | None:
        """The reader of a zarr array, or None if it is not such an array."""
        import os

        meta = array.metadata.to_dict()
        root = getattr(array.store, "root", None)
        chunks = tuple(meta.get("chunk_grid", {}).get("configuration", {}).get("chunk_shape", ()))
        codecs = [c.get("name") for c in meta.get("codecs", ())]
        if (meta.get("zarr_format") != 3 or root is None or type(array.store).__name__ != "LocalStore"
                or meta.get("chunk_key_encoding") != {"name": "default", "configuration": {"separator": "/"}}
                or codecs != ["bytes", "zstd"] or meta["codecs"][0].get("configuration", {}).get("endian") != "little"
                or array.dtype.kind != "f" or len(chunks) != array.ndim or chunks[1:] != tuple(array.shape[1:])):
            return None
        return cls(os.path.join(str(root), array.path), np.dtype(array.dtype).newbyteorder("<"),
                   tuple(array.shape), chunks[0], float(array.fill_value))

    def read(self, z0: int, z1: int) -> np.ndarray:
        """Planes ``z0:z1`` of one chunk (``z0`` its first plane)."""
        from numcodecs import Zstd

        i, rest = divmod(z0, self.planes)
        if rest or z1 > min(z0 + self.planes, self.shape[0]) or z1 <= z0:
            raise ValueError(f"planes {z0}:{z1} are not within one chunk of {self.planes} planes")
        nbytes = self.planes * int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        path = f"{self.folder}/c/{i}" + "/0" * (len(self.shape) - 1)
        try:
            with open(path, "rb") as fobj:
                data = fobj.read()
        except FileNotFoundError:  # a chunk never written: its fill value, as zarr gives it
            return np.full((z1 - z0,) + self.shape[1:], self.fill, dtype=self.dtype)
        try:
            raw = Zstd().decode(data)
            if len(raw) != nbytes:  # decoded into a bigger buffer, a short chunk would pass unseen
                raise ValueError(f"it holds {len(raw):,} bytes, a chunk of this array {nbytes:,}")
        except (RuntimeError, ValueError) as exc:
            from mrsdask.errors import DamagedStoreError
            from mrsdask.io.zarr_damage import CUBE_REPAIR

            raise DamagedStoreError(
                f"{path}: chunk of planes {z0}:{z1} cannot be read ({exc}); the store is damaged: {CUBE_REPAIR}"
            ) from None
        return np.frombuffer(raw, dtype=self.dtype).reshape((self.planes,) + self.shape[1:])[:z1 - z0]


def _planes(array, z0: int, z1: int) -> np.ndarray:
    return array.read(z0, z1) if isinstance(array, PlaneFiles) else array[z0:z1]


def stored_slab_sums(arrays: Mapping, z0: int, z1: int, where: str, **kwargs) -> dict[str, np.ndarray]:
    """:func:`~mrsdask.extract.columns.slab_sums` of planes ``z0:z1``, read from ``arrays``
    (:data:`PLANES`: zarr arrays or their :class:`PlaneFiles`); an exception gets a note naming
    the slab (``where``), as :func:`mrsdask.dispatch.map_slabs` adds."""
    from mrsdask.extract.columns import slab_sums

    try:
        return slab_sums(*(_planes(arrays[key], z0, z1) for key in PLANES), **kwargs)
    except Exception as exc:
        exc.add_note(f"in {where}")
        raise


def stored_columns(tables: list[dict], omega: float, covar: float,
                   residual_fringe: tuple[np.ndarray, int | None] | None = None) -> dict[str, np.ndarray]:
    """The spectrum's columns (:func:`~mrsdask.extract.plan.spectrum_columns`) from its slabs' tables.

    ``residual_fringe``: the spectrum's wavelengths and channel, to fill the ``rf_*`` columns
    with the 1-D residual-fringe fit (:func:`~mrsdask.extract.plan.residual_fringe_fits`), as the
    lazy spectra do; without it they are NaN.
    """
    from mrsdask.extract.columns import join_slabs

    col = join_slabs(tables)
    columns = {name: values for name, (values, _) in spectrum_columns(col, omega, covar).items()}
    if residual_fringe is None:
        columns.update({name: np.full(len(col["temp_flux"]), np.nan) for name in RF_COLUMNS})
    else:
        wave, channel = residual_fringe
        fits = residual_fringe_fits(col["temp_flux"], columns["surf_bright"], columns["background"], wave, channel)
        for name, fitted, scale in zip(RF_COLUMNS, fits, residual_fringe_scales(omega)):
            columns[name] = fitted * scale
    return columns


def spectrum_graph(cube: StoredCube, ap: Aperture, request: ExtractRequest) -> tuple[dict, str]:
    """The Dask graph of a cube's spectrum columns: one task per stored slab of planes (the
    arrays' chunks along wavelength) and one that joins them; and the key of that one."""
    bounds = np.cumsum((0,) + tuple(_plane_chunks(cube.arrays["sci"])))
    label = f"extraction of cube {cube.name}"
    readers = {key: PlaneFiles.of(array) or array for key, array in cube.arrays.items()}
    graph, keys = {}, []
    for i, (z0, z1) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist())):
        task = functools.partial(stored_slab_sums, **{k: v[z0:z1] for k, v in ap.per_plane.items()}, **ap.shared)
        keys.append((f"extract-slab-{cube.name}", i))
        graph[keys[-1]] = (task, readers, z0, z1, f"{label}: planes {z0}:{z1}")
    key = f"extract-columns-{cube.name}"
    rf = (ap.wave, channel_number(cube)) if residual_fringe_note(cube, request) == RF_APPLIED else None
    graph[key] = (stored_columns, keys, float(cube.attrs["pixelarea_steradians"]), float(request.ifu_covar_scale), rf)
    return graph, key


def _plane_chunks(array) -> list[int]:
    nz, step = array.shape[0], array.chunks[0]
    return [min(step, nz - z) for z in range(0, nz, step)]


def extract_stored(cubes: Mapping[str, StoredCube], files: list[str], folder: str, request: ExtractRequest,
                   announce: Callable[[str], None] = print) -> None:
    """Extract ``cubes`` (from :func:`check_stored`) on the configured in-process scheduler and
    write each spectrum at its path of ``files`` (checked already), announcing what each holds;
    as :func:`mrsdask.extract.run.write_spectra` does for the lazy spectra."""
    from mrsdask.cluster import in_process_get
    from mrsdask.io import outputs, writer_process
    from mrsdask.phases import phase
    from mrsdask.scheduling import configured_in_process

    with phase("graph"):
        params = resolve_parameters(None, request)
        graph, keys, plans = {}, [], []
        for name, cube in cubes.items():
            ap = plan_aperture(cube, params, request)
            part, key = spectrum_graph(cube, ap, request)
            graph.update(part)
            keys.append(key)
            apcorr_done, apcorr_file, factors = aperture_correction(ap, request)
            attrs = spectrum_attrs(cube.attrs, ap, request, rf_done=residual_fringe_note(cube, request),
                                   apcorr_done=apcorr_done, apcorr_file=apcorr_file, slit=None)
            attrs.update({"cube": name, "spectral_leak": LEAK_OFF})
            plans.append((cube, ap, factors, attrs))
        waves = [ap.wave for _, ap, *_ in plans]
        leak = None
        if request.spectral_leak:  # decided (and its table read, or refused) before the extraction
            from mrsdask.extract.leak import plan_leak

            _, leak = plan_leak(list(cubes), [attrs for *_, attrs in plans], waves, request.override_mrsptcorr)
    with phase("extraction"):
        computed = in_process_get(configured_in_process() or "threads")(graph, keys)
    tables = []
    for (cube, ap, factors, attrs), sums in zip(plans, computed):
        data = {name: (values, "") for name, values in {**sums, "aperture_radius": ap.radius}.items()}
        data["apcorr"] = (apply_factors(data, factors, len(ap.wave)), "")
        tables.append({"wavelength": ap.wave, **{name: values for name, (values, _) in data.items()}})
    if leak is not None:  # after the aperture correction, as the official spectral_leak step after extract_1d
        from mrsdask.extract.leak import remove_leak_from_columns

        remove_leak_from_columns(tables, waves, leak)
    outputs.make_folder(folder)
    for (cube, ap, factors, attrs), columns, path in zip(plans, tables, files):
        with phase("x1d write"):
            writer_process.run("write_spectrum", columns, attrs, {"wcs_header": cube.attrs["wcs_header"]},
                               (cube.sizes["y"], cube.sizes["x"]), path)
        announce_spectrum(path, attrs, announce)
    announce_leak([attrs for *_, attrs in plans], announce)
