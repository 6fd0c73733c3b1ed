"""The README's query example on a cube store that lives on an object store (moto on loopback)."""

import pytest

from tests.test_readme import readme_python


def test_the_query_section_runs_on_a_cube_in_an_object_store(window_cube_1a, s3_env, bucket, tmp_path,
                                                             monkeypatch):
    store, name = window_cube_1a
    bucket_name, fs = bucket
    fs.put(store, f"{bucket_name}/cubes.zarr", recursive=True)
    for key, value in s3_env.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    code = readme_python("*Cube*")
    line = next(t for t in code.splitlines() if t.startswith('store = "cubes.zarr"'))
    assert "s3://bucket/cubes.zarr" in line  # the README says how; here it is done
    code = code.replace(line, f'store = "s3://{bucket_name}/cubes.zarr"')
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["spec"]["flux"].attrs["units"] == "mJy" and (namespace["spec"]["npixels"] > 0).all()
    assert float(namespace["image"]["wavelength"]) == pytest.approx(5.34, abs=1e-3)
    assert (tmp_path / "ch1-short.png").stat().st_size > 10_000
    assert not (tmp_path / "cubes.zarr").exists()  # nothing read from a local copy
