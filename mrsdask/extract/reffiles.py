"""Build the reference files mrsdask ships for extraction, in the official formats.

Run ``python -m mrsdask.extract.reffiles [FOLDER]`` to rebuild them (default: the package's
``data`` folder). Both are models, not the CRDS flight files; pass the CRDS files
(``--apcorr``, ``--mrsptcorr``) for flight data.

**APCORR** (``MirMrsApcorrModel``, ASDF): the aperture correction 1/EE(r) of a PSF whose FWHM
follows the MRS law FWHM(λ) = 0.033 λ/µm + 0.106 arcsec (Law et al. 2023, AJ 166, 45), at
radii of 0.5-3.5 FWHM (13 rows) and 49 wavelengths over 4.5-28.5 µm.

* ``gaussian`` (the shipped default): EE(r) = 1 − 2^(−4 r²/FWHM²). It is the PSF of the
  mrsdask simulator, so simulated point sources come out at their true flux. Its limits: the
  real MRS PSF has the wings of a segmented 6.5 m pupil (an Airy-like ring structure, the
  hexagon spikes) and detector scattering (the cruciform below ~10 µm) that a Gaussian lacks;
  on flight data this table under-corrects point-source fluxes by about 10 % at the
  default 2-FWHM radius (its factor there is 1.00002; the ``airy`` table's is 1.10).
* ``airy``: EE(r) = 1 − J0(x)² − J1(x)² of an unobstructed circular pupil, x scaled so that its
  FWHM is the law's. Closer to the real wings, still without segments, spiders, the
  cruciform and the cube's resampling.

**MRSPTCORR** (``MirMrsPtCorrModel``, FITS; only the LEAKCOR table is used, by the spectral
leak): FRAC_LEAK(λ) is an APPROXIMATE shape, not a measurement: a Gaussian in wavelength
centred at 12.2 µm, FWHM 0.2 µm, peak 0.04 (the leak of second-order 6.1 µm light into
channel 3A near 12.2 µm described in the JWST documentation's MRS known issues and
Argyriou et al. 2023, A&A 675, A111; the amplitude and width are an estimate of the order of
magnitude only), zero outside 11.7-12.7 µm; ERR_LEAK is set to the value itself (100 %). The
other tables (TRACOR, WAVCORR_*) are left out (the official spectral_leak step does not read
them). For science use the CRDS file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from mrsdask.io.reference_files import save_reference, stamp_reference

#: MRS PSF FWHM law (Law et al. 2023): FWHM = SLOPE·λ + OFFSET arcsec.
FWHM_SLOPE, FWHM_OFFSET = 0.033, 0.106
APCORR_FILES = {"gaussian": "mrsdask_mrs_apcorr_gaussian.asdf", "airy": "mrsdask_mrs_apcorr_airy.asdf"}
MRSPTCORR_FILE = "mrsdask_mrs_mrsptcorr_approximate.fits"
#: What the files written here say of their origin (:func:`mrsdask.io.reference_files.stamp_reference`).
STAMP = {"author": "mrsdask (mrsdask.extract.reffiles)", "useafter": "2022-01-01T00:00:00"}
#: Half-maximum point of the Airy pattern (2 J1(x)/x)², in x = π D θ / λ.
AIRY_HALF = 1.616339948


def encircled_energy(k: np.ndarray, psf: str) -> np.ndarray:
    """Fraction of a PSF's flux within k FWHM of its centre."""
    k = np.asarray(k, dtype=np.float64)
    if psf == "gaussian":
        return 1.0 - 2.0 ** (-4.0 * k * k)
    if psf == "airy":
        from scipy.special import j0, j1

        x = 2.0 * AIRY_HALF * k
        return 1.0 - j0(x) ** 2 - j1(x) ** 2
    raise ValueError(f"psf {psf!r}: choose gaussian or airy")


def _history(model, text: str) -> None:
    """A HISTORY entry (stdatamodels' newer call where it has one)."""
    add = getattr(model, "add_history_entry", None)
    if add is not None:
        add(text)
    else:
        model.history.append(text)


def write_apcorr_file(path: str, psf: str = "gaussian") -> str:
    """Write the APCORR table of a model PSF (module docstring) as an official ``MirMrsApcorrModel``."""
    from stdatamodels.jwst.datamodels import MirMrsApcorrModel

    wave = np.linspace(4.5, 28.5, 49)
    k = np.arange(0.5, 3.51, 0.25)
    fwhm = FWHM_SLOPE * wave + FWHM_OFFSET
    radius = k[:, None] * fwhm[None, :]
    apcorr = np.broadcast_to(1.0 / encircled_energy(k, psf)[:, None], radius.shape)
    model = MirMrsApcorrModel()
    stamp_reference(model, "APCORR", f"{psf} PSF model, FWHM = {FWHM_SLOPE} lambda/um + {FWHM_OFFSET} arcsec "
                    "(Law et al. 2023); NOT the CRDS flight values", exp_type="MIR_MRS", channel="N/A", **STAMP)
    model.apcorr_table = {
        "channel": "ANY", "band": "ANY",
        "wavelength": wave.astype(np.float32), "wavelength_units": "microns",
        "radius": np.ascontiguousarray(radius, dtype=np.float32), "radius_units": "arcseconds",
        "apcorr": np.ascontiguousarray(apcorr, dtype=np.float32),
        "apcorr_err": np.zeros(radius.shape, dtype=np.float32),
    }
    limits = ("Gaussian: no diffraction wings, segments, spikes or detector scattering; under-corrects flight "
              "point sources by ~10% at 2 FWHM" if psf == "gaussian" else
              "Airy of an unobstructed circular pupil: no segments, spiders, cruciform or cube resampling")
    _history(model, f"Built by mrsdask.extract.reffiles.write_apcorr_file(psf={psf!r}): apcorr = 1/EE(r) "
                         f"at r = 0.5..3.5 FWHM. Limits: {limits}.")
    return save_reference(model, path, all_array_storage="inline")


def write_mrsptcorr_file(path: str) -> str:
    """Write the approximate spectral-leak table (module docstring) as an official ``MirMrsPtCorrModel``."""
    from stdatamodels.jwst.datamodels import MirMrsPtCorrModel

    wave = np.round(np.arange(11.5, 12.901, 0.01), 4)
    frac = 0.04 * np.exp(-0.5 * ((wave - 12.2) / (0.2 / 2.3548)) ** 2)
    frac[(wave < 11.7) | (wave > 12.7)] = 0.0
    leak = np.zeros(wave.size, dtype=[("wavelength", "f4"), ("frac_leak", "f4"), ("err_leak", "f4")])
    leak["wavelength"], leak["frac_leak"], leak["err_leak"] = wave, frac, frac
    model = MirMrsPtCorrModel()
    stamp_reference(model, "MRSPTCORR", "APPROXIMATE spectral leak: Gaussian at 12.2 um, FWHM 0.2 um, peak 4%; an "
                    "order-of-magnitude estimate, NOT the CRDS flight values", exp_type="MIR_MRS", **STAMP)
    model.leakcor_table = leak
    _history(model, "Built by mrsdask.extract.reffiles.write_mrsptcorr_file: FRAC_LEAK is a Gaussian "
                         "shape (12.2 um, FWHM 0.2 um, peak 0.04, zero outside 11.7-12.7 um) estimated from the "
                         "published description of the leak, not measured; ERR_LEAK = FRAC_LEAK. The TRACOR "
                         "and WAVCORR tables are absent (the spectral_leak step does not read them).")
    return save_reference(model, path)


def main(argv: list[str] | None = None) -> int:
    """Rebuild the shipped files into a folder (default: the package's data folder)."""
    argv = sys.argv[1:] if argv is None else argv
    folder = Path(argv[0]) if argv else Path(__file__).parent / "data"
    folder.mkdir(parents=True, exist_ok=True)
    for psf, name in APCORR_FILES.items():
        print(write_apcorr_file(str(folder / name), psf))
    print(write_mrsptcorr_file(str(folder / MRSPTCORR_FILE)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
