"""Progress bars over Dask computations (issue 16, item 8: progress for every long phase)."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np

from mrsdask.progress import compute_with_progress


def test_local_scheduler_bar_counts_the_tasks_and_the_result_is_unchanged(capsys):
    x = da.arange(1000, chunks=100)
    with dask.config.set(scheduler="threads"):
        total = compute_with_progress((x * 2).sum(), "summing", progress=True)
    assert total == 2 * np.arange(1000).sum()
    out = capsys.readouterr().out
    assert "summing" in out
    # every task of the graph was counted: the bar ends at its total (e.g. "21/21")
    import re

    done, total_tasks = map(int, re.findall(r"(\d+)/(\d+)", out)[-1])
    assert done == total_tasks > 10


def test_no_progress_prints_nothing(capsys):
    assert compute_with_progress(da.ones(10, chunks=5).sum(), "quiet", progress=False) == 10
    assert capsys.readouterr().out == ""
