"""The README's "Commands" section runs, in order, in a fresh folder, without a traceback; so does
its "Python API" example.

The commands are read from README.md itself, so the documentation and this test cannot drift
apart (issue 16: "a fresh clone runs every command in the README's Commands section").
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands(heading: str = "## Commands") -> list[str]:
    """The lines of the first ``bash`` block after ``heading``, comments removed."""
    text = README.read_text()
    section = text[text.index(heading):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    lines = [line.split("  #")[0].strip() for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_the_commands_section_is_what_this_test_runs():
    commands = readme_commands()
    assert commands[0].startswith("mrsdask simulate") and all(c.startswith("mrsdask ") for c in commands)
    assert not any("[" in c for c in commands), "optional parts in brackets cannot be run as written"
    assert readme_commands("**Pipelines**") == [
        "mrsdask run fringe-cubes sim/mrssim_spec3_asn.json -o runs/obs1 --set cube.output_type=multi"]


@pytest.mark.slow
def test_readme_commands_run_in_order(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
    # The Commands section, then the pipeline example, which reads the same simulated files.
    for command in readme_commands() + readme_commands("**Pipelines**"):
        line = f'"{sys.executable}" -m mrsdask.cli' + command[len("mrsdask"):] + " --no-progress" * (
            command.split()[1] in ("ingest", "cube", "background", "fringe", "extract", "run"))
        proc = subprocess.run(line, shell=True, cwd=tmp_path, capture_output=True, text=True, env=env,
                              timeout=1800)
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        assert "Traceback" not in proc.stderr, f"{command}\n{proc.stderr[-4000:]}"


def readme_python(heading: str = "## Python API") -> str:
    """The first ``python`` block after ``heading``."""
    text = README.read_text()
    return re.search(r"```python\n(.*?)```", text[text.index(heading):], re.S).group(1)


def test_the_python_api_section_uses_each_entry_point():
    code = readme_python()
    for call in ("mrsdask.cube.build(", "mrsdask.background.subtract(", "mrsdask.fringe.correct(",
                 "mrsdask.pipeline.run("):
        assert call in code, call
    compile(code, "README.md", "exec")


@pytest.mark.slow
def test_the_python_api_section_runs(tmp_path):
    code = readme_python()
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "('cube', 'ran')" in proc.stdout


def test_the_query_section_runs_on_a_cube(window_cube_1a, tmp_path, monkeypatch):
    """The README's query example (Data model section), on a cube of 5.0-5.4 um of the simulation."""
    import shutil

    store, name = window_cube_1a
    shutil.copytree(store, tmp_path / "cubes.zarr")
    monkeypatch.chdir(tmp_path)
    code = readme_python("*Cube*")
    assert name == "ch1-short" and "to_spectral_cube()" in code and "plot_image(" in code
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["spec"]["flux"].attrs["units"] == "mJy" and (namespace["spec"]["npixels"] > 0).all()
    assert float(namespace["image"]["wavelength"]) == pytest.approx(5.34, abs=1e-3)
    assert namespace["sc"].shape == namespace["cube"]["sci"].shape
    assert (tmp_path / "ch1-short.png").stat().st_size > 10_000
