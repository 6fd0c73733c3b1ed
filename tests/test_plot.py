"""Quick-look PNGs (``mrsdask plot``, ``cube.mrs.plot_*``): written, non-empty, and showing the data."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")


def _pixels(path):
    import matplotlib.image

    return np.asarray(matplotlib.image.imread(path))


def test_images_and_spectra_show_their_data(window_cube_1a, tmp_path, capsys):
    from mrsdask.cli import main
    from mrsdask.cube.reader import open_cube

    store, name = window_cube_1a
    assert main(["extract", store, "--x1d", str(tmp_path / "x1d"), "--no-spectral-leak"]) == 0
    x1d = str(tmp_path / "x1d" / f"{open_cube(store, name).attrs['product_name']}_{name}_x1d.fits")
    assert main(["plot", store, "--png", str(tmp_path / "png"), "--x1d", x1d]) == 0
    image, spectra = tmp_path / "png" / f"{name}_image.png", tmp_path / "png" / "spectra.png"
    assert image.stat().st_size > 10_000 and spectra.stat().st_size > 10_000
    assert "wrote 2 PNG file(s)" in capsys.readouterr().out

    cube = open_cube(store, name)
    other = cube.copy()
    other["sci"] = cube["sci"][:, ::-1, :]  # another cube: the source elsewhere
    a = cube.mrs.plot_image(str(tmp_path / "a.png"))
    b = other.mrs.plot_image(str(tmp_path / "b.png"))
    assert _pixels(a).shape == _pixels(b).shape and not np.array_equal(_pixels(a), _pixels(b))
    line = cube.mrs.plot_image(str(tmp_path / "line.png"), 5.1, 5.2)
    assert not np.array_equal(_pixels(line), _pixels(a))
    ra, dec = float(cube["ra"][20, 20]), float(cube["dec"][20, 20])
    assert cube.mrs.plot_spectrum(str(tmp_path / "s.png"), ra, dec, 0.5).endswith("s.png")
    # Mistakes: one line, exit 2.
    for args, message in ((["--wavemin", "5.1"], "give both --wavemin and --wavemax"),
                          (["--x1d", str(tmp_path / "missing_x1d.fits")], "missing_x1d.fits: x1d file not found")):
        assert main(["plot", store, "--png", str(tmp_path / "bad"), *args]) == 2
        assert message in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "missing.zarr"), "--png", str(tmp_path / "bad")]) == 2
    assert "missing.zarr" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
