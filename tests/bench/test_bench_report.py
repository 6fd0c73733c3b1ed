"""The cube benchmark's monitor and report (the benchmark itself runs on demand, not in CI)."""

import sys

import pytest

from mrsdask.bench.cube import _report
from mrsdask.bench.monitor import STEAL_WARNING_FRACTION
from mrsdask.bench.monitor import median_of, run_monitored


def test_the_monitor_measures_a_real_child_process(tmp_path):
    # 200 MB written (so resident, not merely reserved), then 0.8 s of CPU; the monitor samples every 0.1 s.
    code = ("import time\nx = b'\\x01' * 200_000_000\nt = time.process_time()\n"
            "while time.process_time() - t < 0.8: pass")
    r = run_monitored([sys.executable, "-c", code], str(tmp_path / "child.log"))
    assert r["returncode"] == 0
    assert r["peak_rss_process_gb"] > 0.19
    assert r["cpu_s_sampled"] >= 0.6
    assert r["wall_s"] >= r["cpu_s_sampled"] * 0.9
    assert 0.0 <= r["machine_steal_fraction"] <= 1.0


def _result(steal_official: float, steal_mrsdask: float) -> dict:
    side = {"wall_s": 10.0, "cpu_s_sampled": 15.0, "peak_rss_total_gb": 1.0, "peak_rss_process_gb": 0.5}
    return {
        "case": "band1a", "weighting": "drizzle", "n_inputs": 4, "voxels": 100, "machine": {"cores": 2},
        "official": {**side, "wall_s": 60.0, "cpu_s_sampled": 60.0, "machine_steal_fraction": steal_official},
        "mrsdask": {**side, "machine_steal_fraction": steal_mrsdask, "scheduler": "in-process"},
        "speedup_wall": 6.0,
    }


def test_the_report_warns_when_the_host_took_cpu_time(capsys):
    _report(_result(0.0, STEAL_WARNING_FRACTION + 0.35))
    out = capsys.readouterr().out
    assert "warning: the virtual machine's host took up to 40% of the CPU time" in out
    assert "speed-up (official wall / mrsdask wall): 6.0x; CPU time ratio 4.0x" in out


def test_the_report_of_a_quiet_machine_has_no_warning(capsys):
    _report(_result(0.01, 0.0))
    out = capsys.readouterr().out
    assert "warning" not in out
    assert "CPU stolen" in out


def test_repeated_runs_report_the_median_and_the_spread(capsys):
    runs = [{"returncode": 0, "wall_s": w, "cpu_s_sampled": c, "peak_rss_total_gb": m, "peak_rss_process_gb": m / 2,
             "machine_steal_fraction": st, "log": "x"}
            for w, c, m, st in ((10.0, 19.0, 1.0, 0.0), (30.0, 21.0, 1.5, 0.2), (11.0, 20.0, 1.2, 0.01))]
    side = median_of(runs)
    assert side["wall_s"] == 11.0 and side["cpu_s_sampled"] == 20.0  # medians: the 30 s outlier is out
    assert side["peak_rss_total_gb"] == 1.5 and side["machine_steal_fraction"] == 0.2  # worst case kept
    assert [r["wall_s"] for r in side["runs"]] == [10.0, 30.0, 11.0]
    result = _result(0.0, 0.0)
    result["repeat"] = 3
    result["mrsdask"] = {**side, "scheduler": "in-process"}
    _report(result)
    out = capsys.readouterr().out
    assert "medians of 3 runs per side" in out and "wall 10.0-30.0 s" in out


def test_repeat_below_one_is_refused_before_any_work(tmp_path, capsys):
    from tests.conftest import run_cli_here

    proc = run_cli_here(capsys, "bench", "cube", "--repeat", "0", "--workdir", str(tmp_path / "b"))
    assert proc.returncode == 2 and "--repeat 0" in proc.stderr
    assert not (tmp_path / "b").exists()


def test_the_sides_of_a_benchmark_run_in_turn_and_a_failure_names_its_side(tmp_path, capsys):
    from mrsdask.bench.monitor import run_alternating

    seen = []
    sides = [("a", "side A", [sys.executable, "-c", "print('a')"]), ("b", "side B", [sys.executable, "-c", "print('b')"])]
    runs = run_alternating(sides, 2, lambda side, n: str(tmp_path / f"{side}-{n}.log"), before=seen.append,
                           host_settle_max_s=0)
    assert seen == ["a", "b", "a", "b"] and [len(runs["a"]), len(runs["b"])] == [2, 2]
    assert [r["host_settle_s"] for r in runs["a"] + runs["b"]] == [0.0] * 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-1.log", "a-2.log", "b-1.log", "b-2.log"]
    assert "running side B (2/2)" in capsys.readouterr().out
    failing = [("c", "side C", [sys.executable, "-c", "raise SystemExit('broken')"])]
    with pytest.raises(RuntimeError, match="side C failed"):
        run_alternating(failing, 1, lambda side, n: str(tmp_path / f"{side}-{n}.log"), host_settle_max_s=0)
    assert "broken" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["-1", "2", "inf"])
def test_a_host_settle_limit_that_cannot_work_is_refused_before_any_work(tmp_path, capsys, value):
    from tests.conftest import run_cli_here

    proc = run_cli_here(capsys, "bench", "extract", "--host-settle-max", value, "--workdir", str(tmp_path / "b"))
    assert proc.returncode == 2 and f"--host-settle-max {float(value)}" in proc.stderr
    assert not (tmp_path / "b").exists()


_INTERRUPTS = """           CPU0       CPU1
 31:          0       9239 PCI-MSIX-0000:00:01.0   3-edge      virtio0-stats
 32:      20267         15 PCI-MSIX-0000:00:01.0   4-edge      virtio0-reporting_vq
 36:          0    2759075 PCI-MSIX-0000:00:02.0   1-edge      virtio1-req.0
"""


def test_free_page_reports_are_the_reporting_queue_interrupts_of_every_cpu(tmp_path):
    from mrsdask.bench.monitor import free_page_reports

    path = tmp_path / "interrupts"
    path.write_text(_INTERRUPTS)
    assert free_page_reports(str(path)) == 20267 + 15
    path.write_text(_INTERRUPTS.replace("reporting_vq", "deflate"))
    assert free_page_reports(str(path)) is None  # no balloon reporting: nothing to wait for
    assert free_page_reports(str(tmp_path / "absent")) is None


class _FakeHost:
    """A clock that only sleeps move, and the free-page reports it has sent by each time."""

    def __init__(self, report_times, gone_at=None):
        self.now, self.report_times, self.gone_at = 0.0, report_times, gone_at

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds

    def reports(self):
        if self.gone_at is not None and self.now >= self.gone_at:
            return None
        return 100 + sum(t <= self.now for t in self.report_times)


def _wait(host, max_s=60.0):
    from mrsdask.bench.monitor import wait_for_host_reclaim

    return wait_for_host_reclaim(max_s=max_s, quiet_s=4.0, poll_s=0.25, reports=host.reports, clock=host.clock,
                                 sleep=host.sleep)


def test_the_wait_for_the_host_ends_4_s_after_its_last_report():
    # Reports 2 s after the last run freed its memory and every 2.3 s after, the last at 11.2 s.
    waited, quiet = _wait(_FakeHost([2.0, 4.3, 6.6, 8.9, 11.2]))
    assert quiet is True and 15.2 <= waited <= 15.5
    waited, quiet = _wait(_FakeHost([]))  # nothing freed: the quiet time only
    assert quiet is True and waited == 4.0


def test_the_wait_for_the_host_stops_at_the_limit_or_when_nothing_can_be_watched():
    from mrsdask.bench.monitor import wait_for_host_reclaim

    never_done = _FakeHost([0.5 * k for k in range(1, 1000)])
    waited, quiet = _wait(never_done, max_s=10.0)
    assert quiet is False and 10.0 <= waited <= 10.25
    waited, quiet = _wait(_FakeHost([2.0], gone_at=1.0))  # the queue's line goes away
    assert quiet is None and waited == 1.0
    assert wait_for_host_reclaim(max_s=5.0, reports=lambda: None) == (0.0, None)
    assert wait_for_host_reclaim(max_s=0.0, reports=_FakeHost([]).reports) == (0.0, None)


def test_the_report_says_how_long_the_bench_waited_for_the_host(capsys):
    result = _result(0.0, 0.0)
    for side, waits in (("official", ((4.0, True), (4.1, True))), ("mrsdask", ((14.5, True), (4.0, True)))):
        result[side]["runs"] = [{"wall_s": result[side]["wall_s"], "host_settle_s": w, "host_quiet": q}
                                for w, q in waits]
    _report(result)
    out = capsys.readouterr().out
    assert "the bench waited 4.0-14.5 s for the host to take back the memory the last run freed" in out
    assert "warning: " not in out
    result["mrsdask"]["runs"][1]["host_quiet"] = False  # the wait reached its limit
    _report(result)
    assert "warning: 1 of 4 runs started before the host was done" in capsys.readouterr().out


def test_a_side_summary_keeps_the_waits_per_run_only():
    runs = [{"returncode": 0, "wall_s": 1.0, "cpu_s_sampled": 1.0, "peak_rss_total_gb": 0.1,
             "peak_rss_process_gb": 0.1, "machine_steal_fraction": 0.0, "host_settle_s": w, "host_quiet": True}
            for w in (4.0, 9.0)]
    side = median_of(runs)
    assert "host_settle_s" not in side and [r["host_settle_s"] for r in side["runs"]] == [4.0, 9.0]
