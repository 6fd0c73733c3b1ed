"""A run folder belongs to one pipeline: another pipeline is refused, or with --overwrite
replaces the old run entirely (no orphaned outputs of the old pipeline)."""

import os

import pytest

from mrsdask.cli import main
from mrsdask.pipeline import MANIFEST, read_manifest

A = """\
name: pipe-a
description: band cubes of channel 1 and their spectra
steps:
  - step: cube
    channels: [1]
  - step: extract
"""
B = """\
name: pipe-b
description: band cubes of channel 1 as s3d files
steps:
  - step: cube
    channels: [1]
  - step: export
"""


@pytest.fixture
def run_of_a(sim_1a, tmp_path):
    (tmp_path / "a.yaml").write_text(A)
    (tmp_path / "b.yaml").write_text(B)
    folder = tmp_path / "run"
    assert main(["run", str(tmp_path / "a.yaml"), str(sim_1a.association), "-o", str(folder),
                 "--scheduler", "threads", "--no-progress"]) == 0
    assert os.listdir(folder / "x1d")
    return folder


def test_another_pipeline_is_refused_in_a_run_folder_then_replaces_it_with_overwrite(run_of_a, sim_1a, tmp_path,
                                                                                     capsys):
    folder = run_of_a
    before = (folder / MANIFEST).read_bytes()
    capsys.readouterr()
    args = ["run", str(tmp_path / "b.yaml"), str(sim_1a.association), "-o", str(folder), "--scheduler", "threads",
            "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'pipe-a'" in err[0] and "'pipe-b'" in err[0] and "--overwrite" in err[0], err
    assert (folder / MANIFEST).read_bytes() == before  # the record of A is untouched

    assert main([*args, "--overwrite"]) == 0
    record = read_manifest(str(folder))
    assert record["pipeline"] == "pipe-b"
    assert [s["id"] for s in record["steps"]] == ["cube", "export"]
    assert not (folder / "x1d").exists(), "pipe-a's spectra were left behind"
    assert [f for f in os.listdir(folder / "s3d") if f.endswith("_s3d.fits")]
