"""The llama-server tab, offscreen: the offers in their order with the exact asset, the download
button installing the real llama-server from a local server playing GitHub, cancel, update offers,
and a GPU that the binary leaves idle named on the hardware tab and in the plan."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from llama_launcher.core.host import gpus as gpu_inventory
from llama_launcher.core.host import hardware
from llama_launcher.core.host.gpus import GpuInventory, NvidiaGpu
from llama_launcher.core.llama_server.discovery import EXE
from llama_launcher.core.llama_server.releases import Platform
from llama_launcher.core.settings import store as settings_store
from llama_launcher.ui.main_window import MainWindow

from fake_server import make_fake_server
from gguf_factory import write_model
from release_server import ReleaseServer, server_archive

WAIT = 60_000
# what a machine without a GPU is offered, per platform (the recorded b11434 answer)
EXPECTED = {
    ("linux", "x64"): ("llama-b11434-bin-ubuntu-x64.tar.gz", "(CPU)"),
    ("linux", "arm64"): ("llama-b11434-bin-ubuntu-arm64.tar.gz", "(CPU)"),
    ("macos", "arm64"): ("llama-b11434-bin-macos-arm64.tar.gz", "Apple Silicon (Metal)"),
    ("macos", "x64"): ("llama-b11434-bin-macos-x64.tar.gz", "(CPU)"),
    ("windows", "x64"): ("llama-b11434-bin-win-cpu-x64.zip", "(CPU)"),
}
PACKAGE_MANAGER = {"darwin": "brew install llama.cpp", "win32": "winget install llama.cpp"}


@pytest.fixture
def no_server_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, github: ReleaseServer) -> Path:
    """A computer where discovery finds no llama-server, and the release check asks the local server."""
    cache = tmp_path / "server-cache"
    cache.mkdir()
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("LLAMA_LAUNCHER_SERVER_CACHE", str(cache))
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("USERPROFILE", str(tmp_path / "home"))
    monkeypatch.delenv("LLAMA_SERVER", raising=False)
    monkeypatch.setenv("LLAMA_LAUNCHER_RELEASES_URL", github.api_url)
    monkeypatch.setattr(gpu_inventory, "detect", lambda: GpuInventory())  # offered as to a machine without a GPU
    return cache


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    write_model(folder / "plain.gguf", arch="llama", name="Plain")
    return folder


def open_window(qtbot, models: Path, binary: Path | None = None) -> MainWindow:
    settings_store.save(settings_store.AppSettings(folders=[str(models)], binary=str(binary) if binary else None))
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1280, 820)
    w.show()
    return w


def expected() -> tuple[str, str]:
    plat = Platform.current()
    return EXPECTED[(plat.os, plat.arch)]


def test_first_run_offers_in_order_and_the_download_button_installs_the_server(
        qtbot, no_server_here: Path, models: Path, github: ReleaseServer, llama_server: str) -> None:
    asset, target_words = expected()
    backend = "metal" if target_words.endswith("(Metal)") else "cpu"
    github.serve(asset, server_archive(Path(llama_server), asset))
    w = open_window(qtbot, models)
    p = w.server_panel
    assert w.tabs.currentIndex() == 4 and w.llama.binary is None
    qtbot.waitUntil(lambda: p.download_btn.isEnabled(), timeout=WAIT)
    # 1 detected ones (none here: no heading over nothing), 2 the download with its exact asset, 3 the package
    # manager (macOS and Windows: Linux has no standard one), 4 build from source
    assert not p.detected_title.isVisible() and not p.detected_box.isVisible()
    assert p.download_btn.text().startswith("Download llama.cpp b11434 for ") and p.download_btn.text().endswith(
        target_words)
    assert p.asset_label.text().startswith(f"{asset} (")
    assert p.pm_command.isVisible() == (sys.platform in PACKAGE_MANAGER)
    assert p.pm_command.text() == PACKAGE_MANAGER.get(sys.platform, "")
    assert p.build_btn.text() == "Build from source"
    tops = [wd.mapTo(p, QPoint(0, 0)).y() for wd in p.offer_widgets()]
    offers = p.offer_widgets()
    assert len(offers) == (3 if sys.platform in PACKAGE_MANAGER else 2)
    assert all(wd.isVisibleTo(p) for wd in offers) and tops == sorted(tops) and len(set(tops)) == len(offers)
    if sys.platform in PACKAGE_MANAGER:
        qtbot.mouseClick(p.copy_btn, Qt.MouseButton.LeftButton)
        assert QApplication.clipboard().text() == p.pm_command.text()

    qtbot.mouseClick(p.download_btn, Qt.MouseButton.LeftButton)
    target = no_server_here / "b11434" / EXE
    qtbot.waitUntil(lambda: w.llama.caps is not None and w.llama.binary is not None, timeout=WAIT)
    assert w.llama.binary.path == str(target) and w.settings_ctl.settings.binary == str(target) and target.is_file()
    assert w.llama.caps.build_number == 11434 and w.llama.caps.mtp_token == "draft-mtp"
    assert p.path.text() == str(target) and p.source.text() == f"setting: llama.cpp release b11434 ({backend}), downloaded by the launcher" and p.problem.text() == ""
    assert "installed llama.cpp b11434" in p.build_log.toPlainText()
    assert not p.advice.isVisibleTo(p)  # a current build is in use: nothing more to offer
    qtbot.waitUntil(lambda: w.planner.plan is not None, timeout=WAIT)
    assert w.planner.plan.argv[0] == str(target) and w.launch_action.isEnabled()
    # no staging folder left; the new build is recorded as the one in use
    assert sorted(x.name for x in no_server_here.iterdir()) == ["b11434", "in-use.json"]


def test_cancel_in_the_window_stops_the_download_and_installs_nothing(
        qtbot, no_server_here: Path, models: Path, github: ReleaseServer) -> None:
    asset, _ = expected()
    data = os.urandom(16 * 1024 * 1024)
    github.serve(asset, data, behaviour="held")  # one chunk, then nothing until the test releases the rest
    w = open_window(qtbot, models)
    p = w.server_panel
    qtbot.waitUntil(lambda: p.download_btn.isEnabled(), timeout=WAIT)
    qtbot.mouseClick(p.download_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(github.sent), timeout=WAIT)  # the transfer began, and the server holds the rest
    assert p.cancel_btn.isVisible() and not p.download_btn.isEnabled()
    qtbot.mouseClick(p.cancel_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not p.cancel_btn.isVisible(), timeout=WAIT)
    assert sum(github.sent.values()) < len(data) and not github.release_gate.is_set()  # it did not wait for the rest
    assert p.problem.text() == "download cancelled; nothing was installed"
    assert p.download_btn.isEnabled() and w.llama.binary is None
    assert list(no_server_here.iterdir()) == []


def test_a_failed_download_says_why_in_one_line(qtbot, no_server_here: Path, models: Path,
                                                github: ReleaseServer) -> None:
    asset, _ = expected()
    github.serve(asset, os.urandom(200_000), behaviour="flip")
    w = open_window(qtbot, models)
    p = w.server_panel
    qtbot.waitUntil(lambda: p.download_btn.isEnabled(), timeout=WAIT)
    qtbot.mouseClick(p.download_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "SHA-256" in p.problem.text(), timeout=WAIT)
    assert p.problem.text().startswith(f"{asset} does not match the SHA-256 digest the release lists")
    assert "\n" not in p.problem.text() and w.llama.binary is None and list(no_server_here.iterdir()) == []


def test_an_old_build_in_use_is_offered_the_newer_release(qtbot, no_server_here: Path, models: Path,
                                                          tmp_path: Path) -> None:
    old = make_fake_server(tmp_path / "old", "b9093-post-rename")
    w = open_window(qtbot, models, old)
    p = w.server_panel
    qtbot.waitUntil(lambda: w.llama.caps is not None and p.update_label.isVisibleTo(p), timeout=WAIT)
    assert p.update_label.text() == "A newer llama.cpp is available: b11434. It adds draft-mtp (your b9093 lacks it)."
    assert p.download_btn.isVisibleTo(p) and p.download_btn.text().startswith("Download llama.cpp b11434 for ")
    assert not p.build_btn.isVisibleTo(p) and not p.pm_command.isVisibleTo(p)


def test_an_idle_gpu_is_named_on_the_hardware_tab_in_the_plan_and_with_an_offer(
        qtbot, no_server_here: Path, models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rtx = hardware.GPU("NVIDIA GeForce RTX 4090", "CUDA", 24564, 24000, "572.16", "pynvml")
    monkeypatch.setattr(hardware, "nvidia_gpus", lambda notes: [rtx])  # pynvml's view, without the card
    monkeypatch.setattr(gpu_inventory, "detect", lambda: GpuInventory(
        nvidia=[NvidiaGpu(rtx.name, (8, 9), 24564)], cuda_driver=(12, 8), driver_version="572.16", vulkan_loader=True))
    cpu_only = make_fake_server(tmp_path / "cpu", "b11434-current")  # --list-devices: (none)
    w = open_window(qtbot, models, cpu_only)
    qtbot.waitUntil(lambda: w.planner.plan is not None, timeout=WAIT)
    hw_panel, p = w.hardware_panel, w.server_panel
    notice = hw_panel.idle_gpu.text()
    assert notice.startswith("Your NVIDIA GeForce RTX 4090 is not used: this llama-server has no CUDA or Vulkan "
                             "backend; download ") and "on the llama-server tab" in notice
    assert hw_panel.idle_gpu.isVisibleTo(hw_panel) and hw_panel.branch.text().startswith("the CPU")
    assert notice in w.launch_panel.preview.warnings.text() and notice in w.planner.plan.warnings
    qtbot.waitUntil(lambda: p.update_label.isVisibleTo(p), timeout=WAIT)
    target = {"windows": "NVIDIA GeForce RTX 4090 (CUDA 12.4)", "linux": "NVIDIA GeForce RTX 4090 (CUDA 12.8)"}
    plat = Platform.current().os
    if plat in target:  # a Mac is offered its Metal or CPU build, which does not drive an NVIDIA card
        assert p.update_label.text() == ("This llama-server does not use your GPU; the b11434 release for "
                                         f"{target[plat]} does.")
        assert p.download_btn.text() == f"Download llama.cpp b11434 for {target[plat]}"


def test_other_llama_servers_found_come_first_and_one_click_uses_one(
        qtbot, no_server_here: Path, models: Path, tmp_path: Path, llama_server: str) -> None:
    import shutil

    broken = make_fake_server(tmp_path / "broken", "b11434-current", behaviour="sigill")
    other = no_server_here / "b11434" / EXE
    other.parent.mkdir()
    shutil.copy2(llama_server, other)
    w = open_window(qtbot, models, broken)
    p = w.server_panel
    qtbot.waitUntil(lambda: "cannot be used" in p.problem.text(), timeout=WAIT)  # the tab says it (not the banner too)
    assert p.detected_title.isVisible()  # something was found: now the heading is there
    rows = [b for b in p.detected_box.findChildren(type(p.build_btn)) if b.text() == "Use this one"]
    labels = [lbl.text() for lbl in p.detected_box.findChildren(type(p.problem))]
    assert len(rows) == 1 and labels == [f"{other}  (launcher cache)"]
    tops = [wd.mapTo(p, QPoint(0, 0)).y() for wd in p.offer_widgets()]
    assert tops == sorted(tops)
    qtbot.mouseClick(rows[0], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.llama.caps is not None, timeout=WAIT)
    assert w.llama.binary is not None and w.llama.binary.path == str(other) and w.llama.caps.build_number == 11434
