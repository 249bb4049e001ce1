"""get-server installs llama-fit-params beside llama-server, and adds it once to a cached build that lacks it.

A real build takes ten minutes on two cores (it was run once for this change: the cached b11434
got its llama-fit-params that way); here a recording ``cmake`` on PATH stands in for the compiler
so the decision (which targets, what is installed where) is checked in seconds.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from llama_launcher.core.llama_server import provisioning

from fake_server import make_script

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the fake cmake is a POSIX script")

FAKE_CMAKE = """
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
with open(os.environ["CMAKE_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if "--build" in args:
    build = Path(args[args.index("--build") + 1])
    targets = args[args.index("--target") + 1: args.index("-j")]
    (build / "bin").mkdir(parents=True, exist_ok=True)
    for t in targets:
        exe = build / "bin" / t
        exe.write_text("#!/bin/sh\\necho 'version: 0.6.0-dev (build 11434, commit x)'\\n")
        exe.chmod(0o755)
print("[100%] Built")
"""


@pytest.fixture
def fake_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    cache = tmp_path / "cache"
    monkeypatch.setenv("LLAMA_LAUNCHER_SERVER_CACHE", str(cache))
    bin_dir = tmp_path / "tools"
    bin_dir.mkdir()
    make_script(bin_dir / "cmake", FAKE_CMAKE)
    for cxx in ("c++", "g++"):
        (bin_dir / cxx).write_text("#!/bin/sh\n")
        (bin_dir / cxx).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    log = tmp_path / "cmake.log"
    monkeypatch.setenv("CMAKE_LOG", str(log))
    # the sources are already unpacked (no download in a test)
    src = cache / f"work-b{provisioning.BUILD_NUMBER}" / "src" / "llama.cpp"
    src.mkdir(parents=True)
    (src / "CMakeLists.txt").write_text("")
    return cache, log


def _builds(log: Path) -> list[list[str]]:
    return [a for a in map(json.loads, log.read_text().splitlines()) if "--build" in a]


def test_a_cached_server_without_the_tool_gets_only_the_tool(fake_cache: tuple[Path, Path]) -> None:
    cache, log = fake_cache
    server = provisioning.installed_binary()
    server.parent.mkdir(parents=True)
    server.write_text("#!/bin/sh\necho 'version: 0.6.0-dev (build 11434, commit cached)'\n")
    server.chmod(0o755)
    before = server.read_text()
    assert provisioning.lacks_fit_tool(server)
    assert provisioning.build_server(jobs=1) == server
    (build,) = _builds(log)
    assert build[build.index("--target") + 1: build.index("-j")] == ["llama-fit-params"]
    assert server.read_text() == before  # the cached server is not replaced
    assert (server.parent / provisioning.FIT_TOOL).is_file() and not provisioning.lacks_fit_tool(server)
    # once the tool is there, nothing is built again
    provisioning.build_server(jobs=1)
    assert len(_builds(log)) == 1


def test_a_fresh_build_installs_both(fake_cache: tuple[Path, Path]) -> None:
    cache, log = fake_cache
    path = provisioning.build_server(jobs=1)
    (build,) = _builds(log)
    assert build[build.index("--target") + 1: build.index("-j")] == ["llama-server", "llama-fit-params"]
    assert path.is_file() and (path.parent / provisioning.FIT_TOOL).is_file()
    assert not (cache / f"work-b{provisioning.BUILD_NUMBER}").exists()  # the work folder goes after success


def test_a_server_found_elsewhere_is_not_the_launchers_to_complete(tmp_path: Path, fake_cache: tuple[Path, Path]) -> None:
    other = tmp_path / "brew" / "llama-server"
    other.parent.mkdir()
    other.write_text("#!/bin/sh\n")
    assert not provisioning.lacks_fit_tool(other)


def test_a_release_download_in_the_build_folder_is_not_taken_for_a_source_build(
        fake_cache: tuple[Path, Path]) -> None:
    from llama_launcher.core.llama_server import build_record

    cache, log = fake_cache
    server = provisioning.installed_binary()
    server.parent.mkdir(parents=True)
    server.write_text("#!/bin/sh\necho 'version: 0.6.0-dev (build 11434, commit release)'\n")
    server.chmod(0o755)
    build_record.write(server.parent, {"source": "llama.cpp release", "release": "b11434", "build": 11434,
                                       "backend": "cpu"})
    assert not provisioning.lacks_fit_tool(server)  # a release is not the launcher's to complete
    seen: list[str] = []
    assert provisioning.build_server(lambda m, f: seen.append(m), jobs=1) == server
    (build,) = _builds(log)
    assert build[build.index("--target") + 1: build.index("-j")] == ["llama-server", "llama-fit-params"]
    assert not any("is already built" in m for m in seen)
    assert any("is llama.cpp's b11434 download, not a source build; building from source" in m for m in seen)
    info = provisioning.read_build_info()
    assert info is not None and info["source"] == "built from source" and provisioning.backend_of(info) == "cpu"


def test_the_record_lists_the_flags_the_build_was_configured_with(fake_cache: tuple[Path, Path]) -> None:
    cache, log = fake_cache
    provisioning.build_server(jobs=1)  # no backend chosen: CPU only
    (configure,) = [a for a in map(json.loads, log.read_text().splitlines()) if "-S" in a]
    info = provisioning.read_build_info()
    assert info is not None and info["backend"] == "cpu" and "-DGGML_CUDA=OFF" in info["flags"]
    assert configure[configure.index("-B") + 2:] == info["flags"]
