"""The writers' warm-up threads load what the s3d and x1d writers need, without failing."""

import logging
import sys

import pytest


@pytest.mark.parametrize("writer, modules", [
    ("mrsdask.cube.export", ["gwcs.wcs", "jwst.assign_wcs.pointing", "asdf"]),
    ("mrsdask.io.x1d", ["stdatamodels.jwst.datamodels", "gwcs.wcs", "asdf"]),
])
def test_a_writer_warm_up_loads_its_modules_and_asdf_extensions(writer, modules, caplog):
    import importlib

    import asdf

    start = importlib.import_module(writer).start_writer_warm_up
    with caplog.at_level(logging.DEBUG, logger="mrsdask.io.warm_up"):
        thread = start()
        thread.join(timeout=120)
    assert not thread.is_alive() and thread.daemon
    assert "failed" not in caplog.text, caplog.text  # a warm-up that fails only logs it: make sure it did not
    assert all(name in sys.modules for name in modules)
    assert any("gwcs" in e.extension_uri for e in asdf.get_config().extensions if e.extension_uri)


def test_a_failing_warm_up_is_logged_not_raised(caplog):
    from mrsdask.io.warm_up import in_background

    def broken() -> None:
        raise ImportError("no such module")

    with caplog.at_level(logging.DEBUG, logger="mrsdask.io.warm_up"):
        in_background(broken, "test-warm-up").join()
    assert "test-warm-up failed: no such module" in caplog.text
