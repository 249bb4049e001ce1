"""``get-server``, the window's headless twin: --download from a local server playing GitHub, and
--build --backend cpu reusing the cached source build (never rebuilding it in a test)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llama_launcher.core.host.backends import Backend
from llama_launcher.core.host.gpus import GpuInventory
from llama_launcher.core.llama_server.build_backend import find_build_tools
from llama_launcher.core.llama_server.discovery import EXE
from llama_launcher.core.llama_server.releases import Platform, choose_download, parse_releases

from conftest import _missing
from release_server import ReleaseServer, recorded_answer, server_archive

CPU_ASSET = choose_download(parse_releases(recorded_answer()), Platform.current(), GpuInventory(), "cpu").assets[0].name


def get_server(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llama_launcher", "get-server", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **env})


@pytest.fixture
def env(tmp_path: Path, github: ReleaseServer) -> dict[str, str]:
    cache = tmp_path / "server-cache"
    cache.mkdir()
    return {"LLAMA_LAUNCHER_SERVER_CACHE": str(cache), "LLAMA_LAUNCHER_RELEASES_URL": github.api_url}


def no_gpu_here() -> bool:
    from llama_launcher.core.host import gpus as gpu_inventory

    inv = gpu_inventory.detect()
    return not inv.nvidia and not inv.discrete_names()


def test_download_installs_the_real_server_then_knows_it_is_installed(github: ReleaseServer, env: dict[str, str],
                                                                      llama_server: str) -> None:
    data = server_archive(Path(llama_server), CPU_ASSET)
    github.serve(CPU_ASSET, data)
    # --backend cpu: the served asset is the CPU one whatever GPU this machine has
    dry = get_server("--download", "--backend", "cpu", "--dry-run", "--json", env=env)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["action"] == "would download" and [a["name"] for a in plan["assets"]] == [CPU_ASSET]
    assert plan["backend"] == ("metal" if Platform.current() == Platform("macos", "arm64") else "cpu")
    assert not any(r.startswith("/download/") for r in github.requests)

    out = get_server("--download", "--backend", "cpu", "--json", env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    target = Path(env["LLAMA_LAUNCHER_SERVER_CACHE"]) / "b11434" / EXE
    assert result["action"] == "downloaded" and result["path"] == str(target) and result["build"] == 11434
    assert "asset: " + CPU_ASSET in out.stderr and "backend: " in out.stderr  # progress on stderr with --json
    probed = subprocess.run([sys.executable, "-m", "llama_launcher", "probe", "--binary", str(target), "--json"],
                            capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    assert probed.returncode == 0 and json.loads(probed.stdout)["build_number"] == 11434

    again = get_server("--download", "--backend", "cpu", "--json", env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["action"] == "already installed"
    human = get_server("--download", "--backend", "cpu", "--force", env=env)
    assert human.returncode == 0 and human.stdout.strip().endswith(f"llama-server ready: {target} ({Backend(plan['backend']).label})")


def test_download_failures_exit_with_one_line(github: ReleaseServer, env: dict[str, str]) -> None:
    github.drop(CPU_ASSET)
    github.drop(CPU_ASSET.replace("b11434", "b11433"), tag="b11433")
    missing = get_server("--download", env=env)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1].startswith(
        f"error: llama.cpp b11434 has no build for {Platform.current().label}")
    assert "Traceback" not in missing.stderr
    impossible = "cuda" if Platform.current().os == "macos" else "metal"
    bad = get_server("--download", "--backend", impossible, env=env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.count("error:") == 1
    off = get_server("--download", env={**env, "LLAMA_LAUNCHER_RELEASES_URL": "off"})
    assert off.returncode == 2 and off.stderr.strip() == \
        "error: checking llama.cpp's releases is switched off (LLAMA_LAUNCHER_RELEASES_URL=off)"
    unreachable = get_server("--download", env={**env, "LLAMA_LAUNCHER_RELEASES_URL": "http://127.0.0.1:9/x"})
    assert unreachable.returncode == 1 and unreachable.stderr.strip().splitlines()[-1].startswith(
        "error: cannot reach 127.0.0.1")
    assert os.listdir(env["LLAMA_LAUNCHER_SERVER_CACHE"]) == []


def test_build_with_backend_cpu_reuses_the_cached_build_and_records_its_backend(
        tmp_path: Path, llama_server: str) -> None:
    from llama_launcher.core.llama_server.provisioning import installed_binary

    cached = installed_binary()
    if not cached.is_file():  # fails in CI, like every missing prerequisite (see conftest)
        _missing(f"the cached source build {cached}")
    cache = tmp_path / "server-cache"
    shutil.copytree(cached.parent, cache / cached.parent.name)
    info_file = cache / cached.parent.name / "build_info.json"
    if info_file.exists():  # as written before backends were chosen: no "backend" key
        info = json.loads(info_file.read_text())
        info.pop("backend", None)
        info_file.write_text(json.dumps(info))
    out = get_server("--build", "--backend", "cpu", "--json", env={"LLAMA_LAUNCHER_SERVER_CACHE": str(cache)})
    assert out.returncode == 0, out.stderr
    assert "configure" not in out.stderr and not (cache / "work-b11434").exists()  # nothing was rebuilt
    result = json.loads(out.stdout)
    assert result == {**result, "action": "built", "backend": "cpu", "build": 11434,
                      "path": str(cache / cached.parent.name / EXE)}
    assert "backend: CPU (you asked for a CPU-only build)" in out.stderr and "is already built" in out.stderr
    assert json.loads(info_file.read_text())["backend"] == "cpu"


def test_build_dry_run_says_which_backend_and_why(tmp_path: Path) -> None:
    out = get_server("--build", "--dry-run", "--json", env={"LLAMA_LAUNCHER_SERVER_CACHE": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    tools = find_build_tools()
    if tools.nvcc and no_gpu_here():  # this dev machine: nvcc installed, no NVIDIA GPU
        assert plan["backend"] == "cpu" and "no NVIDIA GPU was found" in plan["reason"]
        assert "-DGGML_CUDA=OFF" in plan["cmake_flags"]
    assert out.stderr.startswith(f"backend: {Backend(plan['backend']).label} (")
    no_sdk = {"LLAMA_LAUNCHER_SERVER_CACHE": str(tmp_path), "PATH": str(tmp_path), "VULKAN_SDK": ""}
    vulkan = subprocess.run([sys.executable, "-m", "llama_launcher", "get-server", "--build", "--backend", "vulkan"],
                            capture_output=True, text=True, timeout=120, env={**os.environ, **no_sdk})
    assert vulkan.returncode == 2 and vulkan.stderr.startswith("error: a Vulkan build needs the Vulkan SDK's glslc")
    wrong = get_server("--build", "--release", "b11433", env={"LLAMA_LAUNCHER_SERVER_CACHE": str(tmp_path)})
    assert wrong.returncode == 2 and wrong.stderr.startswith("error: --release applies to --download only")


@pytest.mark.skipif(sys.platform == "win32", reason="the fake llama-server is a POSIX script")
def test_download_beside_a_source_build_of_the_same_number_keeps_both(github: ReleaseServer, env: dict[str, str],
                                                                       tmp_path: Path) -> None:
    from llama_launcher.core.llama_server import build_record, provisioning

    from fake_server import make_fake_server

    cache = Path(env["LLAMA_LAUNCHER_SERVER_CACHE"])
    source = cache / f"b{provisioning.BUILD_NUMBER}"
    make_fake_server(source, "b11434-current")
    make_fake_server(source, "b11434-current", name="llama-fit-params")
    (source / build_record.BUILD_INFO).write_text(json.dumps(
        {"source": "built from source", "build": 11434, "backend": "cpu", "flags": provisioning.CMAKE_FLAGS}))
    before = (source / EXE).read_bytes()
    github.serve(CPU_ASSET, server_archive(make_fake_server(tmp_path / "fake", "b11434-current"), CPU_ASSET))
    out = get_server("--download", "--backend", "cpu", "--json", env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["action"] == "downloaded" and result["path"] == str(cache / "b11434-release" / EXE)
    assert (source / EXE).read_bytes() == before
    assert sorted(os.listdir(cache)) == ["b11434", "b11434-release", "in-use.json"]
    again = get_server("--download", "--backend", "cpu", "--json", env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["action"] == "already installed", again.stderr
    built = get_server("--build", "--backend", "cpu", "--json", env=env)
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["path"] == str(source / EXE) and "is already built" in built.stderr


def test_a_found_path_is_printed_without_its_control_characters(tmp_path: Path) -> None:
    evil = tmp_path / "evil\x1b]0;pwned\x07\x1b[2J\nready: x" / EXE
    out = get_server(env={"LLAMA_LAUNCHER_SERVER_CACHE": str(tmp_path / "cache"), "LLAMA_SERVER": str(evil)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("llama-server found: ") and out.stdout.count("\n") == 1
    assert not any(c in out.stdout for c in ("\x1b", "\x07")) and "\\nready: x" in out.stdout
