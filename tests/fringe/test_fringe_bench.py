"""The benchmark script runs and its two codes agree (slow: runs the official step)."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_benchmark_small(tmp_path):
    import bench_residual_fringe

    out = tmp_path / "bench.json"
    rc = bench_residual_fringe.main(["--columns", "6", "--schedulers", "threads", "--workdir", str(tmp_path / "w"),
                                     "--json", str(out)])
    results = json.loads(out.read_text())
    agreement = results["mrsdask_threads"]["agreement"]
    assert rc == 0
    assert agreement["pixels_both"] > 1000
    assert agreement["fringe_rms_after_mrsdask"] < agreement["fringe_rms_input"] / 5
