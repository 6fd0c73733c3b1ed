"""The embedded demo observation is simulated once and reused while unchanged (issue 16, item 8)."""

from __future__ import annotations

import os

from mrsdask.sim.demo import cached_demo, demo_association

CONFIG = {"bands": ["1A"], "n_dithers": 1, "noise": False, "seed": 5, "prefix": "demo",
          "sources": [{"type": "point", "ra_offset": 0.1, "dec_offset": 0.0, "continuum_mjy": 10.0}]}


def test_demo_is_simulated_once_and_simulated_again_only_when_something_changed(tmp_path):
    folder = str(tmp_path / "simulated")
    said = []
    first = demo_association(folder, CONFIG, announce=said.append)
    assert "simulating" in said[-1] and os.path.isfile(first)
    cal = [os.path.join(folder, f) for f in os.listdir(folder) if f.endswith("_cal.fits")]
    before = {f: os.stat(f).st_mtime_ns for f in cal}

    again = demo_association(folder, dict(CONFIG), announce=said.append)
    assert again == first and "simulated before" in said[-1]
    assert {f: os.stat(f).st_mtime_ns for f in cal} == before  # nothing rewritten

    assert cached_demo(folder, {**CONFIG, "seed": 6}) is None  # another configuration
    os.utime(cal[0], ns=(before[cal[0]] + 10**9, before[cal[0]] + 10**9))  # a file rewritten since
    assert cached_demo(folder, CONFIG) is None
    os.utime(cal[0], ns=(before[cal[0]], before[cal[0]]))
    assert cached_demo(folder, CONFIG) == first
    os.remove(cal[0])  # a file removed
    assert cached_demo(folder, CONFIG) is None
