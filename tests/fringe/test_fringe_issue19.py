"""Residual fringes where real spectra showed the fit short of the official one (issue 19).

On the simulations of :mod:`fringe_cases` (MRS band ranges and sampling, known truth):

* channel 4: main (≈ 2.9 cm⁻¹) and dichroic (≈ 0.4 cm⁻¹) fringes both found and removed, and a
  reason recorded per component when one is not;
* the 4C end: no correction where the fit has no pixels (above 27.6 µm in 1-D), so no ripple
  added there, and no factor beyond the injected fringe;
* strong unresolved lines on fringe peaks: line fluxes (minus the local continuum) within 1 %
  of the truth-corrected spectrum, in every band, 1-D and per detector column.

The comparisons with the official ``fit_residual_fringes_1d`` on the same arrays are slow
(seconds per spectrum) and marked so; they print both codes' numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from fringe_cases import (
    BANDS,
    EDGE_UM,
    channel4_spectrum,
    edge_spectrum,
    edge_scatter,
    line_flux_shifts,
    line_spectrum,
    mrs_spectrum,
    residual_amplitudes,
)

from mrsdask.fringe import fit_residual_fringes_1d
from mrsdask.fringe import kernels as K
from mrsdask.fringe.kernels import ComponentStatus, FitSettings, FringeComponent, Status

MAIN = FringeComponent(2.9, 1.5, 10, 10.0, 0.001)
DICHROIC = FringeComponent(0.4, 0.15, 15, 10.0, 0.001)


def _column_fit(col, channel):
    """The detector-level fit of one column (errors, channel 3/4 smoothed feature search)."""
    comps = [MAIN] if channel < 3 else [MAIN, DICHROIC]
    settings = FitSettings(smooth_features=7) if channel >= 3 else FitSettings()
    return K.fit_column(col.flux, col.wavenumber, comps, err=col.err, max_ptp=0.8, settings=settings)


# --------------------------------------------------------------------------- channel 4
@pytest.mark.parametrize("band", ["4A", "4B", "4C"])
@pytest.mark.parametrize("path", ["1d", "column"])
def test_channel4_main_and_dichroic_fringes_removed(band, path):
    col = channel4_spectrum(band, seed=0)
    if path == "1d":
        out, fit = fit_residual_fringes_1d(col.flux, col.wavelength, channel=4, return_fit=True)
        factor = out / col.flux
    else:
        fit = _column_fit(col, 4)
        factor = fit.factor
    assert fit.status == Status.CORRECTED, fit.reasons()
    assert list(fit.component_status) == [ComponentStatus.FITTED, ComponentStatus.FITTED], fit.reasons()
    assert fit.periods[0] == pytest.approx(2.9, abs=0.05)
    assert fit.periods[1] == pytest.approx(0.4, abs=0.05)
    main_before, dich_before = residual_amplitudes(col, np.ones_like(factor))
    main_after, dich_after = residual_amplitudes(col, factor)
    assert main_after < main_before / 10, (main_before, main_after)
    assert dich_after < dich_before / 5, (dich_before, dich_after)


def test_component_without_fringe_says_why():
    col = mrs_spectrum("4B", main_amp=0.0, dichroic_amp=0.0, snr=200.0, seed=2)
    out, fit = fit_residual_fringes_1d(col.flux, col.wavelength, channel=4, return_fit=True)
    assert fit.status == Status.NO_FRINGES
    assert list(fit.component_status) == [ComponentStatus.NO_EVIDENCE, ComponentStatus.NO_EVIDENCE]
    assert fit.reasons() == "no_fringes; main: no_evidence, dichroic: no_evidence"
    np.testing.assert_array_equal(out, col.flux)
    # a dichroic fringe alone: the main component has no evidence, the dichroic one is fitted
    col = mrs_spectrum("4C", main_amp=0.0, dichroic_amp=0.03, snr=200.0, seed=2)
    _, fit = fit_residual_fringes_1d(col.flux, col.wavelength, channel=4, return_fit=True)
    assert list(fit.component_status) == [ComponentStatus.NO_EVIDENCE, ComponentStatus.FITTED], fit.reasons()
    # a column below the dichroic component's MIN_SNR: that component is skipped for S/N
    col = channel4_spectrum("4A", seed=1, snr=20.0)
    fit = K.fit_column(col.flux, col.wavenumber, [MAIN, FringeComponent(0.4, 0.15, 15, 1e4, 0.001)])
    assert list(fit.component_status) == [ComponentStatus.FITTED, ComponentStatus.LOW_SNR], fit.reasons()
    fit = K.fit_column(col.flux, col.wavenumber, [MAIN, FringeComponent(0.0, 0.0)])
    assert list(fit.component_status) == [ComponentStatus.FITTED, ComponentStatus.PLACEHOLDER]


# --------------------------------------------------------------------------- the 4C end
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_ripple_added_beyond_the_fitted_range(seed):
    col = edge_spectrum(seed)
    out, fit = fit_residual_fringes_1d(col.flux, col.wavelength, channel=4, return_fit=True)
    assert fit.status == Status.CORRECTED
    factor = out / col.flux
    # the short-scale scatter at the end is not made larger (it is noise-dominated there: 0.5 %
    # allows for the factor of the taper zone scaling the noise; extrapolated sines tripled it)
    assert edge_scatter(col, out) <= 1.005 * edge_scatter(col, col.flux), (edge_scatter(col, col.flux),
                                                                           edge_scatter(col, out))
    # no correction more than one main-fringe period beyond the last fitted pixel
    nu_edge = 1.0e4 / EDGE_UM
    beyond = col.wavenumber < nu_edge - 2.9
    assert np.all(factor[beyond] == 1.0)
    # the fitted fringe never exceeds the injected one
    assert np.max(np.abs(1.0 / factor - 1.0)) <= np.max(np.abs(col.fringe - 1.0))


def test_envelope_is_not_extrapolated():
    col = channel4_spectrum("4C", seed=0)
    _, fit = fit_residual_fringes_1d(col.flux, col.wavelength, channel=4, return_fit=True)
    sines = fit.sines[0]
    lo = sines.seg_mid[0] - sines.seg_half[0]
    far = np.linspace(lo - 30.0, lo, 400)
    # held at the end value: no larger than within the fitted range
    inside = np.linspace(lo, lo + 10.0, 400)
    assert np.max(np.abs(sines(far, with_offset=False))) <= 1.05 * np.max(np.abs(sines(inside, with_offset=False)))


# --------------------------------------------------------------------------- strong lines
@pytest.mark.parametrize("band", list(BANDS))
def test_strong_lines_on_fringe_peaks_keep_their_flux(band):
    """Lines of equivalent width 0.05–0.1 µm (10–30× the continuum at the peak) on fringe crests."""
    col = line_spectrum(band, seed=0, ews=(0.05, 0.05, 0.1))
    channel = int(band[0])
    out, fit = fit_residual_fringes_1d(col.flux, col.wavelength, channel=channel, return_fit=True)
    assert fit.component_status[0] == ComponentStatus.FITTED, fit.reasons()
    shifts_1d = line_flux_shifts(col, out)
    shifts_2d = line_flux_shifts(col, col.flux * _column_fit(col, channel).factor)
    before = line_flux_shifts(col, col.flux)
    message = f"{band}: line flux shifts 1-D {shifts_1d}, column {shifts_2d}, uncorrected {before}"
    assert np.all(np.abs(shifts_1d) < 0.01), message
    # per column, with the smoothed feature search of channels 3 and 4
    assert np.all(np.abs(shifts_2d) < 0.01), message


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_strong_lines_4c_other_fringe_phases(seed):
    """Other fringe phases in 4C: at seed 2 the lines moved by 5.6 % (1-D) and 1.7 % (per
    column) while the baseline had a knot every fringe period (see ``baseline_knot_periods``)."""
    col = line_spectrum("4C", seed=seed, ews=(0.05, 0.05, 0.1))
    out = fit_residual_fringes_1d(col.flux, col.wavelength, channel=4)
    shifts_1d = line_flux_shifts(col, out)
    shifts_2d = line_flux_shifts(col, col.flux * _column_fit(col, 4).factor)
    assert np.all(np.abs(shifts_1d) < 0.01) and np.all(np.abs(shifts_2d) < 0.01), (shifts_1d, shifts_2d)


def test_channel2_main_fringe_found_next_to_strong_lines():
    """Lines 17× the continuum used to inflate the feature statistics so that nothing was masked,
    and the main fringe got no evidence at all (the channel-4 'no main component' symptom)."""
    col = line_spectrum("2A", seed=0, ews=(0.05, 0.05, 0.1))
    _, fit = fit_residual_fringes_1d(col.flux, col.wavelength, channel=2, return_fit=True)
    assert fit.component_status[0] == ComponentStatus.FITTED, fit.reasons()
    for centre, _, fwhm in col.lines:
        core = np.abs(col.wavelength - centre) < 1.5 * fwhm
        assert fit.features[core].all()


# --------------------------------------------------------------------------- against the official fit
def _official(col, channel):
    import logging

    from jwst.residual_fringe.utils import fit_residual_fringes_1d as official

    logging.getLogger("jwst").setLevel(logging.ERROR)
    return official(col.flux.copy(), col.wavelength.copy(), channel=channel)


@pytest.mark.slow
@pytest.mark.parametrize("band", ["4A", "4B", "4C"])
@pytest.mark.parametrize("seed", [0, 1])
def test_channel4_at_least_as_good_as_official(band, seed):
    col = channel4_spectrum(band, seed=seed)
    ours = fit_residual_fringes_1d(col.flux, col.wavelength, channel=4)
    theirs = _official(col, 4)
    before = residual_amplitudes(col, np.ones(col.flux.size))
    a = residual_amplitudes(col, ours / col.flux)
    b = residual_amplitudes(col, theirs / col.flux)
    message = f"{band} seed {seed}: main/dichroic amplitude input {before}, mrsdask {a}, official {b}"
    print(message)
    assert a[0] <= b[0] and a[1] <= b[1] + 5e-5, message


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_edge_against_official(seed):
    col = edge_spectrum(seed)
    ours = fit_residual_fringes_1d(col.flux, col.wavelength, channel=4)
    theirs = _official(col, 4)
    e = col.wavelength > EDGE_UM
    message = (f"seed {seed}: scatter beyond {EDGE_UM} µm input {edge_scatter(col, col.flux):.4f}, "
               f"mrsdask {edge_scatter(col, ours):.4f}, official {edge_scatter(col, theirs):.4f}; "
               f"max |factor - 1| there mrsdask {np.abs(ours / col.flux - 1)[e].max():.4f}, "
               f"official {np.abs(theirs / col.flux - 1)[e].max():.4f}")
    print(message)
    assert edge_scatter(col, ours) <= min(1.005 * edge_scatter(col, col.flux), edge_scatter(col, theirs)), message


@pytest.mark.slow
@pytest.mark.parametrize("band", ["1A", "2C", "3B", "4B", "4C"])
def test_lines_against_official(band):
    col = line_spectrum(band, seed=0, ews=(0.05, 0.05, 0.1))
    channel = int(band[0])
    ours = line_flux_shifts(col, fit_residual_fringes_1d(col.flux, col.wavelength, channel=channel))
    theirs = line_flux_shifts(col, _official(col, channel))
    message = f"{band}: line flux shifts mrsdask {np.round(100 * ours, 2)} %, official {np.round(100 * theirs, 2)} %"
    print(message)
    assert np.all(np.abs(ours) < 0.01) and np.all(np.abs(ours) <= np.abs(theirs) + 0.002), message
