"""What the window says about running things matches what runs (issue 19, items 3, 4, 6 and 9).

- Tune from the Live panel while a server runs asks, stops that server, then tunes.
- Closing during a source build asks, stops cmake and its compilers, and nothing is left running;
  the next start offers to remove (or resume) the interrupted build.
- Launch's tooltip keeps the real reason through a server's state changes.
- A server without /metrics: other clients' speed comes from its log, and the panel says so.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import psutil
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from llama_launcher.core.llama_server import provisioning
from llama_launcher.core.server.process import ServerState
from llama_launcher.core.settings import store as settings_store
from llama_launcher.ui.app import quit_without_asking
from llama_launcher.ui.main_window import MainWindow

from conftest import build_processes, cache_with_sources, wait_for
from fake_server import make_fake_server
from gguf_factory import write_model
from window_helpers import WAIT, answer_next_dialog, open_window


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    write_model(folder / "alpha.gguf", arch="llama", name="Alpha")
    return folder


def answer_next_box(accept: bool) -> None:
    """Click the next message box's accept (or cancel) button as soon as it shows."""
    def answer() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            for b in box.buttons():
                if (box.buttonRole(b) == QMessageBox.ButtonRole.AcceptRole) == accept:
                    b.click()
                    return
        QTimer.singleShot(50, answer)

    QTimer.singleShot(50, answer)


def test_tune_from_the_live_panel_stops_the_running_server_first(qtbot, models: Path, tmp_path: Path) -> None:
    exe = make_fake_server(tmp_path / "http", "b11434-current", behaviour="http")
    w = open_window(qtbot, exe, models)
    w.launch()
    qtbot.waitUntil(lambda: w.server.state is ServerState.READY, timeout=WAIT)
    pid = w.server.runner.pid
    assert w.launch_panel.tune.button.isEnabled()  # offered while a server runs: it says it stops it first
    assert "stops the running one first" in w.launch_panel.tune.button.toolTip()
    answer_next_box(accept=False)
    w.live.verdict_tune.click()  # "Tune…" beside a losing setting: declined, nothing changes
    assert w.server.state is ServerState.READY and not w.tuner.running
    answer_next_box(accept=True)
    w.live.verdict_tune.click()
    qtbot.waitUntil(lambda: w.tuner.running, timeout=WAIT)  # the tune began once the server had stopped
    assert w.server.state is ServerState.STOPPED
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    w.launch_panel.tune.cancel_button.click()
    qtbot.waitUntil(lambda: not w.tuner.running, timeout=WAIT)


def test_launch_keeps_its_real_reason_through_a_state_change(qtbot, models: Path, tmp_path: Path) -> None:
    exe = make_fake_server(tmp_path / "http", "b11434-current", behaviour="http")
    broken = models / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 20)
    w = open_window(qtbot, exe, models)
    w.launch()
    qtbot.waitUntil(lambda: w.server.state is ServerState.READY, timeout=WAIT)
    w.models_pane.select(str(broken))  # chosen while the server runs
    qtbot.waitUntil(lambda: w.planner.model is not None and w.planner.model.path == str(broken), timeout=WAIT)
    w.stop_server()
    qtbot.waitUntil(lambda: w.server.state is ServerState.STOPPED, timeout=WAIT)
    tip = w.launch_action.toolTip()
    assert tip.startswith("Cannot launch: this file cannot be launched. This file is damaged"), tip  # not "select a model"


def test_other_clients_speed_comes_from_the_log_when_the_server_has_no_metrics(qtbot, models: Path, tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_METRICS", "off")
    exe = make_fake_server(tmp_path / "http", "b11434-current", behaviour="http")
    w = open_window(qtbot, exe, models)
    w.launch()
    qtbot.waitUntil(lambda: w.server.state is ServerState.READY, timeout=WAIT)
    qtbot.waitUntil(lambda: "not available" in w.live.source.text(), timeout=WAIT)  # /metrics answered 501
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()
    req = urllib.request.Request(w.server.base_url + "/v1/chat/completions", body,
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # another program's request, like curl's
        resp.read()
    qtbot.waitUntil(lambda: w.live.big.text() == "62.5", timeout=WAIT)
    assert w.live.source.text() == "other clients · from the server's log"
    w.stop_server()
    qtbot.waitUntil(lambda: w.server.state is ServerState.STOPPED, timeout=WAIT)


@pytest.mark.integration
def test_closing_during_a_source_build_asks_stops_it_and_the_next_start_offers_to_remove_it(
        qtbot, models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache_with_sources(tmp_path, monkeypatch)
    exe = make_fake_server(tmp_path / "bin", "b11434-current")
    w = open_window(qtbot, exe, models)
    w.server_panel.build_btn.click()
    assert w.server_panel.cancel_btn.isVisibleTo(w.server_panel) and w.server_panel.cancel_btn.text() == "Cancel build"
    qtbot.waitUntil(lambda: "Building" in w.server_panel.build_log.toPlainText() and bool(build_processes()), timeout=600_000)
    answer_next_box(accept=False)
    assert not w.close()  # it asked, and staying was chosen: the build goes on
    assert "being built" in w.running_jobs()[0] and build_processes()
    answer_next_box(accept=True)
    assert w.close()
    assert wait_for(lambda: not build_processes(), 30), [p.name() for p in build_processes()]
    assert not provisioning.installed_binary().exists()
    found = provisioning.interrupted_build()
    assert found is not None and found.size_bytes > 0
    settings_store.save(settings_store.AppSettings(folders=[str(models)], binary=str(exe)))
    w2 = MainWindow()
    qtbot.addWidget(w2, before_close_func=lambda w: w.shutdown())
    w2.show()
    panel = w2.server_panel
    qtbot.waitUntil(lambda: panel.remove_btn.isVisibleTo(panel), timeout=WAIT)
    assert "interrupted" in panel.interrupted.text() and panel.build_btn.text() == "Resume the build"
    panel.remove_btn.click()
    qtbot.waitUntil(lambda: not panel.remove_btn.isVisibleTo(panel), timeout=WAIT)
    assert provisioning.interrupted_build() is None and not found.folder.exists()


@pytest.mark.integration
def test_a_port_taken_between_the_check_and_the_bind_names_its_holder_and_offers_another(
        qtbot, llama_server: str, mtp_models: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real server fails to bind: who holds the port is asked in the server's thread, not the GUI's."""
    import os
    import socket

    from llama_launcher.core.host import network
    from llama_launcher.core.settings.launch import ModelSettings
    from llama_launcher.ui.controllers import server as server_controller

    port = network.free_port()
    checks: list[int] = []

    def first_says_free(p: int) -> network.PortCheck:  # the race: free when checked, taken when bound
        checks.append(p)
        return network.PortCheck(p, True) if len(checks) == 1 else network.check_port(p)

    monkeypatch.setattr(server_controller, "check_port", first_says_free)
    folder = mtp_models["plain"].parent
    w = open_window(qtbot, llama_server, folder, port=port,
                    models={str(mtp_models["plain"]): ModelSettings(threads=1),
                            str(mtp_models["mtp"]): ModelSettings(threads=1)})
    w.models_pane.select(str(mtp_models["plain"]))
    qtbot.waitUntil(lambda: w.planner.plan is not None and str(mtp_models["plain"]) in w.planner.plan.argv,
                    timeout=WAIT)
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", port))
        holder.listen(1)
        w.launch()
        qtbot.waitUntil(lambda: "already in use" in w.banner.text(), timeout=120_000)
        assert w.server.state is ServerState.FAILED and len(checks) == 2  # asked again after the failure
        assert f"pid {os.getpid()}" in w.banner.text()  # the holder, named
        assert w.banner.button.isVisibleTo(w) and "Launch on port" in w.banner.button.text()


def test_a_start_that_fails_before_its_process_exists_learns_from_no_log(qtbot, models: Path, tmp_path: Path) -> None:
    """Memory is learned from this run's log only: a start whose binary is gone has none (it used to
    read the previous run's; issue 19, item 2)."""
    exe = make_fake_server(tmp_path / "http", "b11434-current", behaviour="http")
    w = open_window(qtbot, exe, models)
    ended: list[tuple[int, str]] = []
    w.server.ended.connect(lambda launch, log: ended.append((w.server.run, log)))
    w.launch()
    qtbot.waitUntil(lambda: w.server.state is ServerState.READY, timeout=WAIT)
    w.stop_server()
    qtbot.waitUntil(lambda: len(ended) == 1, timeout=WAIT)
    first_log = ended[0][1]
    assert first_log and Path(first_log).is_file()
    exe.rename(exe.with_name("gone"))  # the binary disappears before the next start
    w.launch()
    qtbot.waitUntil(lambda: len(ended) == 2, timeout=WAIT)
    assert w.server.state is ServerState.FAILED and "not found" in w.banner.text()
    assert ended[1][1] == ""  # no log of its own: nothing of the first run's is read


def test_a_quit_signal_asks_nothing_and_stops_the_server(qtbot, models: Path, tmp_path: Path) -> None:
    """Closing the window while a server runs asks (its sentence keeps llama-server's name); SIGTERM or
    Ctrl+C (a logout, `kill`) is a decision already made: the server stops and the app ends unasked."""
    exe = make_fake_server(tmp_path / "http", "b11434-current", behaviour="http")
    w = open_window(qtbot, exe, models)
    w.launch()
    qtbot.waitUntil(lambda: w.server.state is ServerState.READY, timeout=WAIT)
    pid = w.server.runner.pid
    said = answer_next_dialog("Cancel")
    assert not w.close()  # asked, and staying was chosen
    assert said == ["llama-server is still running. Closing the window stops it."] and w.server.running

    class Quitting:  # the QApplication's part: asked to end its event loop
        asked = 0

        def quit(self) -> None:
            self.asked += 1

    app = Quitting()
    asked: list[str] = []
    watching = [True]

    def refuse_any_question() -> None:  # were one asked, it is noted and answered, so the test cannot hang
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            asked.append(box.text())
            box.reject()
        if watching[0]:
            QTimer.singleShot(20, refuse_any_question)

    QTimer.singleShot(0, refuse_any_question)
    quit_without_asking(app, w)
    assert app.asked == 1  # the process is gone by now (the window's state may still say so later)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    closed = w.close()
    watching[0] = False
    assert closed and asked == []  # the close that follows asks nothing
