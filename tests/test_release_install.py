"""Installing llama.cpp's release builds as a user's machine meets them: the real-shaped answer (every
build a pre-release), archives laid out as llama.cpp packs them (a llama-bN/ tarball plus its CUDA
runtime tarball, a flat Windows zip), the probed llama-server in use at the end, builds side by side
with a way back, macOS's quarantine mark removed, and what a killed download leaves cleaned up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from llama_launcher.core.host import quarantine
from llama_launcher.core.host.gpus import GpuInventory, NvidiaGpu
from llama_launcher.core.llama_server.discovery import EXE, find_server
from llama_launcher.core.llama_server.download import install
from llama_launcher.core.llama_server.fetch import fetch_release
from llama_launcher.core.llama_server.releases import Platform, choose_download

from conftest import wait_for
from fake_server import make_fake_server, make_script
from release_server import ReleaseServer

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the fake llama-server is a POSIX script")
B = "llama-b11434-bin"
HERE = Platform.current()
CPU_STEM = {"linux": f"ubuntu-{HERE.arch}.tar.gz", "macos": f"macos-{HERE.arch}.tar.gz",
            "windows": f"win-cpu-{HERE.arch}.zip"}[HERE.os]


@pytest.fixture
def machine(tmp_path: Path, github: ReleaseServer) -> dict[str, str]:
    """A user's machine: its own launcher cache, no llama-server anywhere else, the releases at the local server."""
    cache = tmp_path / "server-cache"
    cache.mkdir()
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    return {"LLAMA_LAUNCHER_SERVER_CACHE": str(cache), "LLAMA_LAUNCHER_RELEASES_URL": github.api_url,
            "PATH": f"{empty}{os.pathsep}/usr/bin{os.pathsep}/bin", "HOME": str(tmp_path / "home"),
            "LLAMA_SERVER": ""}


def launcher(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llama_launcher", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **env})


def fake_build(tmp_path: Path, era: str = "b11434-current", name: str = "fake") -> Path:
    return make_fake_server(tmp_path / name, era)


def test_dry_run_against_the_real_shaped_answer_picks_a_build_here(machine: dict[str, str],
                                                                   github: ReleaseServer) -> None:
    out = launcher("get-server", "--download", "--dry-run", "--json", env=machine)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    published = {a["name"] for a in github.release()["assets"]}
    assert plan["action"] == "would download" and plan["release"] == "b11434" and plan["build"] == 11434
    assert [a["name"] for a in plan["assets"]][:1] and all(a["name"] in published for a in plan["assets"])
    assert plan["reason"] and plan["needs"] and all(a["role"] for a in plan["assets"])
    if not GpuInventory().nvidia and plan["backend"] == "cpu":  # this machine: no GPU
        assert [a["name"] for a in plan["assets"]] == [f"{B}-{CPU_STEM}"]
    assert f"asset: {plan['assets'][0]['name']}" in out.stderr and "needs: " in out.stderr
    assert not any(r.startswith("/download/") for r in github.requests)


@pytest.mark.skipif(sys.platform == "win32", reason="a Linux CUDA tarball")
def test_a_linux_cuda_build_and_its_runtime_install_and_end_in_use(machine: dict[str, str], github: ReleaseServer,
                                                                   tmp_path: Path) -> None:
    server = fake_build(tmp_path)
    name, runtime = f"{B}-ubuntu-cuda-13.4-x64.tar.gz", f"cudart-{B}-ubuntu-cuda-13.4-x64.tar.gz"
    served = github.serve_build(name, server, extra={"libggml-cuda.so": b"\x7fELF cuda backend"})
    served_rt = github.serve_build(runtime, server)
    env = {**machine, "FAKE_DEVICES": "  CUDA0: NVIDIA GeForce RTX 4090 (24080 MiB, 23500 MiB free)"}
    out = launcher("get-server", "--download", "--backend", "cuda", "--json", env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    folder = Path(machine["LLAMA_LAUNCHER_SERVER_CACHE"]) / "b11434"
    assert result["path"] == str(folder / EXE) and result["assets"] == [name, runtime]
    # the runtime's libraries sit next to llama-server (its $ORIGIN rpath), not in their own folder
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [EXE, "LICENSE", "libggml-cuda.so", "build_info.json", "libcudart.so.13", "libcublas.so.13",
         "libcublasLt.so.13"])
    info = json.loads((folder / "build_info.json").read_text())
    import hashlib

    assert [a["sha256"] for a in info["assets"]] == [hashlib.sha256(served).hexdigest(),
                                                     hashlib.sha256(served_rt).hexdigest()]
    assert "files placed next to llama-server" in out.stderr
    listed = json.loads(launcher("get-server", "--list", "--json", env=env).stdout)["builds"]
    assert [(b["folder"], b["in_use"], b["backend"], b["mtp"]) for b in listed] == [("b11434", True, "cuda", "draft-mtp")]
    assert listed[0]["backends"] == ["CUDA"] and listed[0]["ngram_mod"]
    probed = launcher("probe", "--json", env=env)  # discovery, as every command uses it
    assert probed.returncode == 0 and json.loads(probed.stdout)["path"] == str(folder / EXE)


def test_a_windows_layout_zip_and_its_runtime_zip_install_flat(github: ReleaseServer, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("LLAMA_LAUNCHER_SERVER_CACHE", str(cache))
    server = fake_build(tmp_path)
    name = f"{B}-win-cuda-12.4-x64.zip"
    github.serve_build(name, server, extra={"ggml-cuda.dll": b"MZ", "ggml-base.dll": b"MZ", "ggml-cpu.dll": b"MZ"})
    github.serve_build("cudart-llama-bin-win-cuda-12.4-x64.zip", server)
    inv = GpuInventory(nvidia=[NvidiaGpu("NVIDIA GeForce RTX 4090", (8, 9), 24564)], cuda_driver=(12, 4),
                       driver_version="551.61")
    choice = choose_download(fetch_release(github.api_url), Platform("windows", "x64"), inv)
    assert [a.name for a in choice.assets] == [name, "cudart-llama-bin-win-cuda-12.4-x64.zip"]
    result = install(choice)
    assert result.path == cache / "b11434" / EXE and result.capabilities.build_number == 11434
    assert sorted(p.name for p in result.path.parent.iterdir()) == sorted(
        [EXE, "LICENSE", "ggml-cuda.dll", "ggml-base.dll", "ggml-cpu.dll", "cudart64_12.dll", "cublas64_12.dll",
         "cublasLt64_12.dll", "build_info.json"])


def test_a_newer_build_installs_beside_and_the_previous_one_is_one_switch_away(
        machine: dict[str, str], github: ReleaseServer, tmp_path: Path) -> None:
    cache = Path(machine["LLAMA_LAUNCHER_SERVER_CACHE"])
    github.serve_build(f"llama-b11433-bin-{CPU_STEM}", fake_build(tmp_path, name="old"), tag="b11433")
    first = launcher("get-server", "--download", "--release", "b11433", "--backend", "cpu", "--json", env=machine)
    assert first.returncode == 0, first.stderr
    github.serve_build(f"{B}-{CPU_STEM}", fake_build(tmp_path))
    second = launcher("get-server", "--download", "--backend", "cpu", "--json", env=machine)
    assert second.returncode == 0, second.stderr
    assert "b11433 stays installed; to go back: llama-launcher get-server --use b11433" in second.stderr
    assert sorted(p.name for p in cache.iterdir()) == ["b11433", "b11434", "in-use.json"]
    listed = json.loads(launcher("get-server", "--list", "--json", env=machine).stdout)["builds"]
    assert [(b["folder"], b["in_use"]) for b in listed] == [("b11434", True), ("b11433", False)]
    assert all(b["source"].startswith("llama.cpp release b1143") for b in listed)

    back = launcher("get-server", "--use", "b11433", env=machine)
    assert back.returncode == 0, back.stderr
    assert back.stdout.startswith(f"now using b11433: {cache / 'b11433' / EXE} (llama.cpp release b11433")
    table = launcher("get-server", "--list", env=machine).stdout.splitlines()
    assert table[2].startswith("   b11434") and table[3].startswith("*  b11433"), table
    assert "draft-mtp, ngram-mod; runs on the CPU here" in table[3]
    assert json.loads(launcher("probe", "--json", env=machine).stdout)["path"] == str(cache / "b11433" / EXE)

    busy = launcher("get-server", "--remove", "b11433", env=machine)
    assert busy.returncode == 2 and busy.stderr.strip() == (
        "error: b11433 is the llama-server in use; switch to another build first "
        "('llama-launcher get-server --use bNNNN')")
    gone = launcher("get-server", "--remove", "b11434", env=machine)
    assert gone.returncode == 0 and sorted(p.name for p in cache.iterdir()) == ["b11433", "in-use.json"]
    unknown = launcher("get-server", "--use", "b1", env=machine)
    assert unknown.returncode == 2 and unknown.stderr.strip() == "error: no build b1 is installed (installed: b11433)"


def test_macos_quarantine_is_removed_before_the_first_start_and_said(
        github: ReleaseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("LLAMA_LAUNCHER_SERVER_CACHE", str(cache))
    calls = tmp_path / "xattr-calls.json"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # a fake xattr: records its arguments and whether llama-server was already in the folder it was given
    make_script(bin_dir / "xattr", f"""
import json, os, sys
folder = sys.argv[-1]
with open({str(calls)!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "server_there": os.path.isfile(os.path.join(folder, "llama-server")),
                        "probed_yet": os.path.exists(os.path.join(folder, "build_info.json"))}}) + "\\n")
""")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(quarantine, "IS_MACOS", True)
    github.serve_build(f"{B}-macos-arm64.tar.gz", fake_build(tmp_path))
    choice = choose_download(fetch_release(github.api_url), Platform("macos", "arm64"), GpuInventory())
    seen: list[str] = []
    result = install(choice, progress=lambda m, f: seen.append(m))
    recorded = [json.loads(line) for line in calls.read_text().splitlines()]
    assert len(recorded) == 1 and recorded[0]["argv"][:2] == ["-dr", "com.apple.quarantine"]
    assert recorded[0]["server_there"] and not recorded[0]["probed_yet"]  # before llama-server first runs
    assert "removed macOS's quarantine mark (com.apple.quarantine) from the downloaded build, so macOS lets it start" \
        in seen
    assert result.path == cache / "b11434" / EXE
    monkeypatch.setattr(quarantine, "IS_MACOS", False)  # elsewhere nothing is called
    calls.unlink()
    install(choice)
    assert not calls.exists()


def test_a_killed_download_leaves_a_staging_folder_that_the_next_run_removes(
        machine: dict[str, str], github: ReleaseServer, tmp_path: Path) -> None:
    cache = Path(machine["LLAMA_LAUNCHER_SERVER_CACHE"])
    name = f"{B}-{CPU_STEM}"
    github.serve(name, os.urandom(8 * 1024 * 1024), behaviour="slow")  # ~6 s at the server's pace
    proc = subprocess.Popen([sys.executable, "-m", "llama_launcher", "get-server", "--download", "--backend", "cpu"],
                            env={**os.environ, **machine}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def partial() -> list[Path]:
            return [p for p in cache.glob(".staging-*/" + name) if p.stat().st_size > 0]
        assert wait_for(lambda: bool(partial()), timeout=120)
    finally:
        proc.send_signal(signal.SIGKILL)  # the machine lost power, the user killed it: no cleanup ran
        proc.wait(30)
    left = [p.name for p in cache.glob(".staging-*")]
    assert len(left) == 1
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # another launcher, still working
    try:
        owned = cache / ".staging-b11434-busy"
        owned.mkdir()
        (owned / ".owner.json").write_text(json.dumps({"pid": live.pid,
                                                       "create_time": psutil.Process(live.pid).create_time()}))
        github.serve_build(name, fake_build(tmp_path))
        again = launcher("get-server", "--download", "--backend", "cpu", env=machine)
        assert again.returncode == 0, again.stderr
        assert f"removed {left[0]}, an unfinished download or build left by a run that was stopped (" in again.stdout
        assert sorted(p.name for p in cache.iterdir()) == [".staging-b11434-busy", "b11434", "in-use.json"]
    finally:
        live.kill()
        live.wait(30)


def test_the_window_lists_installed_builds_and_use_this_build_switches_back(
        qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtCore import Qt

    from llama_launcher.core.llama_server import build_record
    from llama_launcher.core.settings import store as settings_store
    from llama_launcher.ui.main_window import TAB_SERVER, MainWindow

    from gguf_factory import write_model

    cache = tmp_path / "server-cache"
    for number, era in ((11433, "b9093-post-rename"), (11434, "b11434-current")):
        folder = cache / f"b{number}"
        make_fake_server(folder, era)
        build_record.write(folder, {"source": build_record.RELEASE_SOURCE, "release": f"b{number}", "build": number,
                                    "backend": "cpu", "installed_at": "2026-12-01 10:00:00"})
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("LLAMA_LAUNCHER_SERVER_CACHE", str(cache))
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LLAMA_SERVER", raising=False)
    models = tmp_path / "models"
    write_model(models / "plain.gguf", arch="llama", name="Plain")
    settings_store.save(settings_store.AppSettings(folders=[str(models)]))
    w = MainWindow()
    qtbot.addWidget(w, before_close_func=lambda w: w.shutdown())
    w.show()
    w.tabs.setCurrentIndex(TAB_SERVER)  # the builds are listed (each run once) when the tab is opened
    box = w.server_panel.installed_builds
    newest, previous = cache / "b11434" / EXE, cache / "b11433" / EXE
    qtbot.waitUntil(lambda: w.llama.caps is not None and "b11433" in box.buttons, timeout=60_000)
    assert w.llama.binary.path == str(newest) and box.isVisibleTo(w.server_panel)
    assert box.buttons["b11434"].text() == "In use" and not box.buttons["b11434"].isEnabled()
    assert box.labels["b11433"].text().startswith("b9093 — llama.cpp release b11433 (cpu), downloaded by the launcher")
    assert "no MTP, ngram-mod" not in box.labels["b11433"].text() and "ngram-mod" in box.labels["b11433"].text()
    qtbot.mouseClick(box.buttons["b11433"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.llama.binary is not None and w.llama.binary.path == str(previous) and w.llama.caps is not None
                    and w.llama.caps.build_number == 9093 and box.buttons.get("b11433") is not None
                    and box.buttons["b11433"].text() == "In use", timeout=60_000)
    assert w.server_panel.path.text() == str(previous)
    assert box.buttons["b11434"].text() == "Use this build" and box.buttons["b11434"].isEnabled()
    assert (cache / "b11434" / EXE).is_file()  # the newer one is kept until the user removes it
    assert find_server().path == str(previous)  # the command line follows the same choice


def test_a_source_build_is_placed_without_its_staging_owner_record(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from llama_launcher.core.llama_server import provisioning

    cache = tmp_path / "cache"
    monkeypatch.setenv("LLAMA_LAUNCHER_SERVER_CACHE", str(cache))
    path = provisioning.install_binary(fake_build(tmp_path))
    assert sorted(p.name for p in cache.iterdir()) == ["b11434"]  # no staging folder left
    assert sorted(p.name for p in path.parent.iterdir()) == ["build_info.json", EXE]
