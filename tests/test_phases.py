"""Phase timings: the line a phase logs is the one ``mrsdask bench`` reads back."""

import logging

from mrsdask.phases import parse_phases, phase


def test_a_logged_phase_is_parsed_back(caplog):
    with caplog.at_level(logging.INFO, logger="mrsdask.phases"):
        with phase("slabs (3 tasks)"):
            sum(i * i for i in range(200_000))
        with phase("s3d export"):
            pass
        with phase("s3d export"):
            pass
    found = parse_phases(caplog.text + "\nINFO other: phase-like text without numbers\n")
    assert list(found) == ["slabs (3 tasks)", "s3d export"]
    wall, cpu = found["slabs (3 tasks)"]
    assert wall > 0 and cpu > 0
    assert found["s3d export"][0] >= 0  # a name seen twice is summed
