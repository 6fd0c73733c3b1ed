"""Quick-look PNGs: a cube's collapsed or line image with the aperture drawn, and spectra with band edges.

``matplotlib`` is an optional extra (``pip install mrsdask[plot]``); these functions import it
only when called and say how to install it otherwise. They write files with the ``Agg`` backend
(no display needed) through :func:`mrsdask.io.outputs.staged_file` (no half-written PNG).

* :func:`plot_image` — the median of the cube over its planes (or over ``wmin``–``wmax``, or a
  continuum-subtracted line map) on the sky axes of the cube's WCS, with an aperture circle;
* :func:`plot_spectra` — flux (Jy) or surface brightness against wavelength for one or more
  spectra (mrsdask spectra or x1d files), with the nominal band edges shaded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from mrsdask.errors import InputError


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise InputError("quick-looks need matplotlib: pip install 'mrsdask[plot]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> str:
    from mrsdask.io import outputs

    with outputs.staged_file(str(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return str(path)


def plot_image(cube: xr.Dataset, path: str, *, wmin=None, wmax=None, continuum=None,
               aperture: tuple[float, float, float] | None = None, title: str | None = None) -> str:
    """Write a PNG of a cube's image on its sky axes.

    Parameters
    ----------
    cube : xarray.Dataset
        A cube (:func:`mrsdask.cube.builder.open_cube`, :func:`mrsdask.io.s3d.open_s3d`).
    path : str
        The PNG to write.
    wmin, wmax : float or Quantity, optional
        Collapse only these wavelengths (µm); with ``continuum`` (two ranges, as
        :meth:`MrsCubeAccessor.line_map`) the image is a continuum-subtracted line map.
    aperture : (x, y, radius), optional
        Circle to draw: centre in 0-based spaxels, radius in arcsec (e.g. an x1d's
        ``extraction_x``/``extraction_y`` and aperture radius).
    title : str, optional
        Default: the cube's channel, band and wavelength range.

    Returns
    -------
    str
        ``path``.
    """
    plt = _pyplot()
    from matplotlib.patches import Circle

    if wmin is not None and wmax is not None:
        if continuum is not None:
            image = cube.mrs.line_map(wmin, wmax, continuum)
            label = "line flux"
        else:
            image = cube.mrs.spectral_slab(wmin, wmax)["sci"].median("wavelength", skipna=True)
            label = "median MJy/sr"
        wave = cube.mrs.spectral_slab(wmin, wmax)["wavelength"].values
    else:
        image = cube["sci"].median("wavelength", skipna=True)
        label, wave = "median MJy/sr", cube["wavelength"].values
    values = np.asarray(image.values, dtype=float)
    if not np.isfinite(values).any():
        raise InputError("the image holds no data (every spaxel is NaN over these wavelengths)")
    fig = plt.figure(figsize=(5.6, 5.0))
    ax = fig.add_subplot(projection=cube.mrs.celestial_wcs)
    lo, hi = np.nanpercentile(values, [1, 99.5])
    shown = ax.imshow(values, origin="lower", cmap="inferno", vmin=lo, vmax=hi if hi > lo else lo + 1)
    fig.colorbar(shown, ax=ax, label=label)
    ax.set_xlabel("RA")
    ax.set_ylabel("Dec")
    if aperture is not None:
        x, y, radius = aperture
        spaxel = float(cube.attrs["cdelt1"]) * 3600.0
        ax.add_patch(Circle((x, y), radius / spaxel, fill=False, edgecolor="cyan", linewidth=1.5))
        ax.plot([x], [y], marker="+", color="cyan")
    a = cube.attrs
    ax.set_title(title or f"ch{a.get('channel', '')} {str(a.get('band', '')).lower()}  "
                          f"{wave[0]:.3f}-{wave[-1]:.3f} um")
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def _as_spectrum(item) -> tuple[str, np.ndarray, np.ndarray, str]:
    """(label, wavelength µm, values, unit) of a spectrum Dataset or an x1d file path."""
    if isinstance(item, xr.Dataset):
        label = str(item.attrs.get("cube") or f"ch{item.attrs.get('channel', '')} {item.attrs.get('band', '')}")
        if "surf_bright" in item and str(item.attrs.get("source_type", "")).upper() == "EXTENDED":
            return label, item["wavelength"].values, item["surf_bright"].values, "MJy/sr"
        return label, item["wavelength"].values, item["flux"].values, str(item["flux"].attrs.get("units", "Jy"))
    from stdatamodels.jwst import datamodels

    with datamodels.open(str(item)) as model:
        spec = model.spec[0]
        table = spec.spec_table
        extended = str(spec.source_type or "").upper() == "EXTENDED"
        column, unit = ("SURF_BRIGHT", "MJy/sr") if extended else ("FLUX", "Jy")
        import os

        return (os.path.basename(str(item)).replace("_x1d.fits", ""), np.array(table["WAVELENGTH"], dtype=float),
                np.array(table[column], dtype=float), unit)


def plot_spectra(spectra: Sequence, path: str, *, title: str | None = None) -> str:
    """Write a PNG of spectra (flux of point sources, surface brightness of extended ones) with band edges.

    Parameters
    ----------
    spectra : sequence of xarray.Dataset or str
        mrsdask spectra (:func:`mrsdask.extract.spectra`) or x1d files.
    path : str
        The PNG to write.
    """
    plt = _pyplot()
    from mrsdask.cube.cubepars import default_cubepars
    from mrsdask.instrument.bands import BANDS

    items = [_as_spectrum(s) for s in spectra]
    if not items:
        raise InputError("no spectrum to plot")
    units = {unit for _, _, _, unit in items}
    fig, ax = plt.subplots(figsize=(8.0, 4.2))
    lo = min(float(np.nanmin(w)) for _, w, _, _ in items)
    hi = max(float(np.nanmax(w)) for _, w, _, _ in items)
    pars = default_cubepars()
    for k, band in enumerate(BANDS):
        edges = pars.band(band.name)
        if edges.wavemax < lo or edges.wavemin > hi:
            continue
        ax.axvspan(edges.wavemin, edges.wavemax, color="0.92" if k % 2 else "0.85", zorder=0)
        ax.text(0.5 * (max(edges.wavemin, lo) + min(edges.wavemax, hi)), 1.0, band.name, ha="center", va="bottom",
                transform=ax.get_xaxis_transform(), fontsize=8, color="0.35")
    for label, wave, values, _ in items:
        ax.plot(wave, values, linewidth=0.8, label=label)
    ax.set_xlim(lo, hi)
    ax.set_xlabel("wavelength (um)")
    ax.set_ylabel(" / ".join(sorted(units)))
    if len(items) > 1:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title, pad=14)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def quick_looks(inputs: Sequence[str], folder: str, *, cubes: Sequence[str] | None = None,
                x1d: Sequence[str] = (), wmin=None, wmax=None, announce=print) -> list[str]:
    """``mrsdask plot``: an image PNG per cube (of a store or s3d files) and one PNG of the spectra.

    The aperture of an x1d file is drawn on the image of the cube it names (``…_<cube>_x1d.fits``
    or the s3d file's x1d); ``spectra.png`` shows the x1d files given.
    """
    import os

    from mrsdask.cube.builder import open_cube
    from mrsdask.extract.run import complete_cubes
    from mrsdask.io import outputs, paths
    from mrsdask.io.s3d import is_s3d_path, open_s3d

    if all(is_s3d_path(p) for p in inputs):
        opened = {os.path.basename(p).replace("_s3d.fits", ""): open_s3d(p) for p in inputs}
    elif len(inputs) == 1:
        paths.check_store_metadata(inputs[0], "build cubes with 'mrsdask cube' first")
        names = list(cubes or complete_cubes(inputs[0]))
        if not names:
            raise InputError(f"{inputs[0]}: holds no complete cube")
        opened = {name: open_cube(inputs[0], name) for name in names}
    else:
        raise InputError(f"give one cube store, or s3d files (*.fits): got {' '.join(inputs)}")
    missing = [str(p) for p in x1d if not paths.exists(str(p))]
    if missing:
        raise InputError(f"{missing[0]}: x1d file not found (give the files 'mrsdask extract --x1d DIR' wrote)")
    apertures = {}
    for path in x1d:
        from stdatamodels.jwst import datamodels

        with datamodels.open(str(path)) as model:
            spec = model.spec[0]
            table = spec.spec_table
            radius = float(np.nanmedian(np.asarray(table["NPIXELS"], dtype=float)))  # spaxels in the aperture
        for name, cube in opened.items():
            if name in os.path.basename(str(path)):
                spaxel = float(cube.attrs["cdelt1"]) * 3600.0
                apertures[name] = (float(spec.extraction_x), float(spec.extraction_y),
                                   float(np.sqrt(radius / np.pi)) * spaxel)
    outputs.check_output_folder(folder, "PNG folder")
    outputs.make_folder(folder)
    written = []
    for name, cube in opened.items():
        path = outputs.join(folder, f"{name}_image.png")
        written.append(plot_image(cube, path, wmin=wmin, wmax=wmax, aperture=apertures.get(name)))
        announce(f"  wrote {path}")
    if x1d:
        path = outputs.join(folder, "spectra.png")
        written.append(plot_spectra(list(x1d), path))
        announce(f"  wrote {path}")
    return written
