"""The window's one job contract (ui/jobs.py): cancel reaches a busy job at once, from the GUI thread;
a cancel clicked before the job starts counts; every way a job ends is one signal, with its run id."""

from __future__ import annotations

import threading

from llama_launcher.core.llama_server.fetch import DownloadError
from llama_launcher.ui.jobs import JobContext, JobRunner


def test_cancel_reaches_a_busy_job_at_once(qtbot) -> None:
    runner = JobRunner("test-worker", "the test job")
    started = threading.Event()
    ended: list[tuple[str, int]] = []
    runner.cancelled.connect(lambda run: ended.append(("cancelled", run)))
    runner.finished.connect(lambda run, r: ended.append(("finished", run)))

    def busy(ctx: JobContext) -> bool:
        started.set()
        return ctx.cancel.wait(30)  # what a download loop or a tune does between its steps

    run = runner.submit(busy)
    assert started.wait(10)
    runner.cancel()  # from this (the GUI) thread, while the job's thread is busy with it
    qtbot.waitUntil(lambda: ended == [("cancelled", run)], timeout=10_000)
    assert runner.shutdown()


def test_a_cancel_before_the_job_starts_counts(qtbot) -> None:
    runner = JobRunner("test-worker", "the test job")
    gate = threading.Event()
    ran: list[str] = []
    runner.submit(lambda ctx: gate.wait(10))  # occupies the thread
    run = runner.submit(lambda ctx: ran.append("second") or ctx.cancel.cancelled)
    runner.cancel(run)  # the second job has not started: its token is armed already
    cancelled: list[int] = []
    runner.cancelled.connect(cancelled.append)
    gate.set()
    qtbot.waitUntil(lambda: cancelled == [run], timeout=10_000)
    assert runner.shutdown()


def test_failures_become_one_line_each(qtbot) -> None:
    runner = JobRunner("test-worker", "the download")
    failed: dict[int, str] = {}
    runner.failed.connect(lambda run, why: failed.__setitem__(run, why))

    def bad_input(ctx: JobContext) -> None:
        raise DownloadError("the release list is not JSON")

    def bug(ctx: JobContext) -> None:
        raise KeyError("assets")

    said = runner.submit(bad_input)
    unexpected = runner.submit(bug)
    qtbot.waitUntil(lambda: len(failed) == 2, timeout=10_000)
    assert failed[said] == "the release list is not JSON"  # a core error: its own words
    assert failed[unexpected] == "the download failed unexpectedly (KeyError: 'assets')"
    assert runner.shutdown()


def test_results_reach_the_caller_of_their_own_run(qtbot) -> None:
    runner = JobRunner("test-worker", "the test job")
    got: list[tuple[str, object]] = []
    runner.submit(lambda ctx: 1, lambda r: got.append(("a", r)))
    runner.submit(lambda ctx: 2, lambda r: got.append(("b", r)))
    qtbot.waitUntil(lambda: len(got) == 2, timeout=10_000)
    assert got == [("a", 1), ("b", 2)]
    assert runner.shutdown()
