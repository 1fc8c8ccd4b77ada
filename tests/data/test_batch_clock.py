"""A batch's seconds per phase (:mod:`data.batch.clock`): added up over the loop, kept when
the block raises, and never more than the whole run."""

from __future__ import annotations

import time

import pytest

from data.batch.clock import BatchTimes, Stopwatch


def test_each_phase_adds_up_over_the_loop_and_the_total_holds_them_all() -> None:
    clock = Stopwatch()
    for _ in range(3):
        with clock.phase("read"):
            time.sleep(0.01)

    def failed_write() -> None:
        with clock.phase("write"):
            time.sleep(0.01)
            raise RuntimeError("a failed write still took its time")

    with pytest.raises(RuntimeError):
        failed_write()
    times = clock.times("serial")
    assert times["runner"] == "serial"
    assert times["read_s"] >= 0.03 and times["write_s"] >= 0.01
    assert times["total_s"] >= times["read_s"] + times["write_s"]
    assert BatchTimes(**times).read_s == times["read_s"]


def test_a_phase_never_run_is_zero_seconds() -> None:
    times = Stopwatch().times("dask")
    assert times["read_s"] == 0.0 and times["write_s"] == 0.0
