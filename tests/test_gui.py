"""The window, offscreen: controls drive the planned argv, launch/try-it/live numbers, failures, logs."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from llama_launcher.core.server.process import ServerState
from llama_launcher.core.settings import store as settings_store
from llama_launcher.core.settings.launch import ModelSettings
from llama_launcher.ui.controllers import llama_server as llama_server_controller
from llama_launcher.ui.log_view import HISTORY_LINES, MAX_LINES_PER_BATCH, VIEW_LINES
from llama_launcher.ui.main_window import TAB_SERVER, MainWindow

from fake_server import make_fake_server
from gguf_factory import write_model
from window_helpers import WAIT, flat, open_window, send_prompt, start_tune, value_after


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    write_model(folder / "tiny-mtp.gguf", arch="qwen35", name="Tiny MTP", blocks=3, nextn=1)
    write_model(folder / "plain.gguf", arch="llama", name="Plain")
    return folder


@pytest.fixture
def fake_current(tmp_path: Path) -> Path:
    return make_fake_server(tmp_path / "bin", "b11434-current")


def select(qtbot, w: MainWindow, name: str) -> None:
    w.models_pane.select(next(m.path for m in w.models_pane.table_model.models if m.name == name))
    qtbot.waitUntil(lambda: w.planner.model is not None and w.planner.model.name == name and w.planner.plan is not None, timeout=WAIT)


def test_window_opens_and_lists_models(qtbot, models: Path, fake_current: Path) -> None:
    w = open_window(qtbot, fake_current, models)
    assert {m.name for m in w.models_pane.table_model.models} == {"Tiny MTP", "Plain"}
    assert w.llama.caps is not None and w.llama.caps.mtp_token == "draft-mtp"
    assert w.llama.hw is not None and w.llama.hw.backend_devices == []
    assert "CPU" in w.hardware_panel.branch.text()
    assert flat(w)[:2] == ["-m", w.planner.model.path]
    w.models_pane.search.setText("plain")
    assert w.models_pane.proxy.rowCount() == 1
    w.models_pane.search.setText("")
    w.models_pane.table.sortByColumn(0, w.models_pane.table.horizontalHeader().sortIndicatorOrder().DescendingOrder)
    assert w.models_pane.proxy.index(0, 0).data() == "Tiny MTP"


def test_each_control_changes_the_planned_argv(qtbot, models: Path, fake_current: Path) -> None:
    w = open_window(qtbot, fake_current, models)
    select(qtbot, w, "Tiny MTP")
    p = w.launch_panel
    argv = flat(w)
    assert value_after(argv, "--spec-type") == "ngram-mod"  # tiny MTP model: below 3B, Auto keeps MTP off
    p.speculative.mode["mtp"].setCurrentIndex(p.speculative.mode["mtp"].findData("on"))
    argv = flat(w)
    assert value_after(argv, "--spec-type") == "ngram-mod,draft-mtp" and value_after(argv, "--spec-draft-n-max") == "3"
    assert "small model" in p.preview.warnings.text()
    p.speculative.mode["ngram-mod"].setCurrentIndex(p.speculative.mode["ngram-mod"].findData("off"))
    argv = flat(w)
    assert value_after(argv, "--spec-type") == "draft-mtp" and "--spec-ngram-mod-n-max" not in argv
    p.speculative.draft.setValue(5)
    assert value_after(flat(w), "--spec-draft-n-max") == "5" and not p.speculative.draft_default.isChecked()
    assert p.speculative.draft_value.text() == "MTP proposes 5 tokens a step"
    p.speculative.mode["mtp"].setCurrentIndex(p.speculative.mode["mtp"].findData("off"))
    assert "--spec-type" not in flat(w)
    p.speculative.mode["ngram-mod"].setCurrentIndex(p.speculative.mode["ngram-mod"].findData("on"))
    p.advanced.toggle.setChecked(True)
    p.advanced.knobs["ngram_n_max"].setValue(80)
    argv = flat(w)
    assert value_after(argv, "--spec-ngram-mod-n-max") == "80"
    p.memory.ctx.setValue(8192)
    assert value_after(flat(w), "-c") == "8192"
    p.advanced.threads.setValue(3)
    assert value_after(flat(w), "-t") == "3"
    p.advanced.gpu_layers.setValue(10)
    assert value_after(flat(w), "-ngl") == "10"
    p.network.extra.setText("--jinja")
    assert flat(w)[-1:] == ["--jinja"]
    # every row of the preview carries the whole flag and its reason as a tooltip
    for i in range(p.preview.tree.topLevelItemCount()):
        item = p.preview.tree.topLevelItem(i)
        assert item.toolTip(0) and item.toolTip(0) == f"{item.text(0)}\n\n{item.text(1)}"


def test_unavailable_controls_are_disabled_with_the_reason(qtbot, models: Path, fake_current: Path,
                                                          tmp_path: Path) -> None:
    w = open_window(qtbot, fake_current, models)
    select(qtbot, w, "Plain")
    assert not w.launch_panel.speculative.mode["mtp"].isEnabled()
    assert "model has no MTP layers" in w.launch_panel.speculative.mode["mtp"].toolTip()
    w.shutdown()
    old = make_fake_server(tmp_path / "old", "b9093-post-rename")
    w2 = open_window(qtbot, old, models)
    select(qtbot, w2, "Tiny MTP")
    assert not w2.launch_panel.speculative.mode["mtp"].isEnabled()
    assert "this llama-server has no MTP (draft-mtp); update llama.cpp" in w2.launch_panel.speculative.mode["mtp"].toolTip()
    # the reason is on screen, not only in a tooltip
    why = w2.launch_panel.speculative.why["mtp"]
    assert why.isVisibleTo(w2.launch_panel) and "has no MTP" in why.text()


def test_extra_args_are_validated_as_you_type(qtbot, models: Path, fake_current: Path) -> None:
    w = open_window(qtbot, fake_current, models)
    w.launch_panel.network.extra.setText("--port 9999")
    assert w.planner.plan is None and "--port cannot be used" in w.launch_panel.preview.error.text()
    assert not w.launch_action.isEnabled() and "--port" in w.launch_action.toolTip()
    assert w.launch_panel.network.extra.property("invalid") is True
    w.launch_panel.network.extra.setText("--jinja")
    assert w.planner.plan is not None and w.launch_action.isEnabled() and w.launch_panel.preview.error.text() == ""


def test_lan_switch_requires_and_shows_a_redacted_key(qtbot, models: Path, fake_current: Path) -> None:
    w = open_window(qtbot, fake_current, models)
    w.launch_panel.network.lan.setChecked(True)
    key = w.launch_panel.network.api_key.text()
    assert key.startswith("ll-") and len(key) > 20
    argv = flat(w)
    assert value_after(argv, "--host") == "0.0.0.0" and "--api-key" not in argv
    key_file = value_after(argv, "--api-key-file")
    assert key_file and Path(key_file).read_text().strip() == key  # the server reads it from the owner-only file
    assert key not in w.launch_panel.preview.command_text()
    assert w.planner.plan is not None and key not in " ".join(w.planner.plan.argv)  # never on the command line (ps shows it)
    w.launch_panel.network.lan.setChecked(False)
    assert value_after(flat(w), "--host") == "127.0.0.1"


def test_settings_persist_and_a_corrupt_store_gives_a_notice(qtbot, models: Path, fake_current: Path) -> None:
    w = open_window(qtbot, fake_current, models)
    select(qtbot, w, "Plain")
    w.launch_panel.memory.ctx.setValue(4096)
    w.launch_panel.network.extra.setText("--jinja")
    w.close()
    w2 = MainWindow()
    qtbot.addWidget(w2)
    qtbot.waitUntil(lambda: w2.planner.plan is not None, timeout=WAIT)
    assert w2.planner.model is not None and w2.planner.model.name == "Plain"
    assert w2.launch_panel.memory.ctx.value() == 4096 and w2.launch_panel.network.extra.text() == "--jinja"
    w2.close()
    settings_store.settings_file().write_text("{ corrupt")
    w3 = MainWindow()
    qtbot.addWidget(w3)
    assert w3.banner.isVisibleTo(w3) and "corrupt" in w3.banner.text()
    assert list(settings_store.settings_file().parent.glob("settings.json.corrupt-*"))
    w3.close()


def test_dropping_a_file_adds_its_folder_and_selects_it(qtbot, models: Path, fake_current: Path, tmp_path: Path) -> None:
    w = open_window(qtbot, fake_current, models)
    other = write_model(tmp_path / "elsewhere" / "dropped.gguf", name="Dropped")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(other))])
    w.dropEvent(QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                           Qt.KeyboardModifier.NoModifier))
    qtbot.waitUntil(lambda: w.planner.model is not None and w.planner.model.name == "Dropped", timeout=WAIT)
    assert str(other.parent) in w.settings_ctl.settings.folders


def test_first_run_without_llama_server(qtbot, models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llama_server_controller, "find_server", lambda *a, **k: None)
    settings_store.save(settings_store.AppSettings(folders=[str(models)]))
    w = MainWindow()
    qtbot.addWidget(w, before_close_func=lambda w: w.shutdown())  # a failed test must not leave a dialog up
    w.show()
    assert w.tabs.currentIndex() == TAB_SERVER
    assert w.server_panel.advice.isVisibleTo(w.server_panel) and not w.banner.isVisible()  # the tab says it
    w.tabs.setCurrentIndex(0)
    assert "No llama-server" in w.banner.text()  # elsewhere the banner does, once
    assert not w.launch_action.isEnabled()
    qtbot.waitUntil(lambda: w.llama.hw is not None, timeout=WAIT)


def test_close_while_running_asks_and_stop_leaves_nothing(qtbot, models: Path, tmp_path: Path) -> None:
    hang = make_fake_server(tmp_path / "hang", "b11434-current", behaviour="help")
    w = open_window(qtbot, hang, models)
    w.launch()
    qtbot.waitUntil(lambda: w.server.runner is not None and w.server.runner.pid is not None, timeout=WAIT)
    pid = w.server.runner.pid
    answers = iter(["cancel", "stop"])

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            choice = next(answers)
            for b in box.buttons():
                if (choice == "stop") == (box.buttonRole(b) == QMessageBox.ButtonRole.AcceptRole):
                    b.click()
                    return
        QTimer.singleShot(50, answer)

    QTimer.singleShot(50, answer)
    assert not w.close()  # cancelled: the window and the server stay
    assert psutil.pid_exists(pid)
    QTimer.singleShot(50, answer)
    assert w.close()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_every_line_of_a_flood_is_shown_or_counted_and_the_last_one_explains(qtbot, models: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """100,000 lines, then the one that says why the server failed: the window shows that line, counts
    every line it did not show, and says so, however fast or slow the machine is."""
    monkeypatch.setenv("FAKE_FLOOD_LINES", "100000")
    monkeypatch.setenv("FAKE_FLOOD_THEN", "fail")
    flood = make_fake_server(tmp_path / "flood", "b11434-current", behaviour="flood")
    w = open_window(qtbot, flood, models)
    batches: list = []
    w.server.log_batch.connect(batches.append)
    w.launch()
    qtbot.waitUntil(lambda: w.server.state is ServerState.FAILED and w.logs.total_lines >= 100_001, timeout=300_000)
    assert w.logs.total_lines == 100_001  # every line the server printed, shown or counted
    assert sum(b.count for b in batches) == 100_001
    last = w.logs.view.document().lastBlock().text()
    assert last == "llama_model_load: error: failed to allocate CPU buffer of size 9999 MiB"
    cut_by_view = sum(max(0, len(b.lines) - MAX_LINES_PER_BATCH) for b in batches)
    assert w.logs.not_shown == sum(b.skipped for b in batches) + cut_by_view
    status = w.logs.status.text()
    assert status.startswith("100,001 lines from llama-server")
    if w.logs.not_shown:
        assert f"{w.logs.not_shown:,} not shown to keep the window responsive" in status
    assert "log file: " in status
    assert "failed to allocate" in w.banner.text()  # the reason, from that last line
    assert w.logs.view.document().blockCount() <= VIEW_LINES + 1
    assert len(w.logs.history) <= HISTORY_LINES
    # how responsive the window stays under the flood is measured in benchmarks/bench_log_flood.py


@pytest.mark.integration
def test_launch_try_it_and_live_decode_speed(qtbot, llama_server: str, demo_model: Path) -> None:
    w = open_window(qtbot, llama_server, demo_model.parent, models={str(demo_model): ModelSettings(threads=2)})
    assert w.planner.model is not None and w.planner.model.path == str(demo_model)
    states: list[str] = []
    w.server.state_changed.connect(lambda e: states.append(e.state.value))
    w.launch_action.trigger()
    qtbot.waitUntil(lambda: w.server.state in (ServerState.READY, ServerState.FAILED), timeout=240_000)
    assert w.server.state == ServerState.READY, w.banner.text()
    assert "starting" in states or "loading" in states
    assert w.toolbar.endpoint.text() == w.server.base_url + "/v1" and w.live.send_btn.isEnabled()
    assert w.logs.total_lines > 0
    result = send_prompt(qtbot, w, "Name three colours.", timeout=240_000)
    assert result.text and result.timings is not None
    expected = result.timings["predicted_per_second"]
    assert expected > 0
    assert w.live.own_speed is not None and w.live.own_speed.decode_tps == expected
    assert w.live.big.text() == f"{expected:.1f}"
    qtbot.wait(2500)  # a /metrics poll after our own request must not replace our number
    assert w.live.big.text() == f"{expected:.1f}"
    pid = w.server.runner.pid
    w.stop_action.trigger()
    qtbot.waitUntil(lambda: w.server.state == ServerState.STOPPED, timeout=WAIT)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.integration
def test_failing_launches_show_the_classified_reason(qtbot, llama_server: str, mtp_models: dict,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    folder = mtp_models["plain"].parent
    # MTP forced through the user's own flags (the planner itself never emits it for this model)
    w = open_window(qtbot, llama_server, folder, models={str(mtp_models["plain"]): ModelSettings(extra_args="--spec-type draft-mtp", threads=1),
                                                         str(mtp_models["mtp"]): ModelSettings(threads=1)})
    select(qtbot, w, "tiny mimo2")
    w.launch()
    qtbot.waitUntil(lambda: w.server.state == ServerState.FAILED, timeout=120_000)
    assert "The model has no MTP layers" in w.banner.text()  # a sentence
    assert "doesn't contain MTP layers" in w.banner.text()  # the proof from the log
    assert w.logs.total_lines > 0 and w.launch_action.isEnabled()


@pytest.mark.integration
def test_tune_button_measures_and_auto_uses_the_result(qtbot, llama_server: str, mtp_models: dict) -> None:
    folder = mtp_models["mtp"].parent
    w = open_window(qtbot, llama_server, folder, models={str(mtp_models["mtp"]): ModelSettings(threads=1)})
    select(qtbot, w, "tiny mimo2 MTP")
    assert "not measured" in w.launch_panel.tune.label.text()
    said = start_tune(w)
    assert said and said[0].startswith("Tune measures, each on a code and a prose prompt") and "\n• MTP at " in said[0] \
        and "about " in said[0]
    assert w.launch_panel.tune.bar.isVisibleTo(w.launch_panel)
    qtbot.waitUntil(lambda: w.launch_panel.tune.button.isEnabled()
                    and "Fastest on this machine" in w.launch_panel.tune.label.text(), timeout=600_000)
    rows = [w.launch_panel.tune.table.topLevelItem(i).text(0) for i in range(w.launch_panel.tune.table.topLevelItemCount())]
    assert rows[0].startswith("off") and any(r.startswith("MTP") for r in rows)
    assert w.planner.plan is not None and w.planner.plan.speculative.source == "measured"


@pytest.mark.skipif(__import__("sys").platform == "win32", reason="Windows has no SIGTERM")
def test_the_app_quits_cleanly_on_sigterm(tmp_path: Path, models: Path, fake_current: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    settings_store.save(settings_store.AppSettings(folders=[str(models)], binary=str(fake_current)))
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    app = subprocess.Popen([sys.executable, "-m", "llama_launcher"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
    try:
        time.sleep(4)
        assert app.poll() is None, "the window did not stay open"
        app.send_signal(signal.SIGTERM)
        assert app.wait(30) == 0
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)


def test_stopping_the_metrics_poll_mid_request_is_quiet(qtbot) -> None:
    """Stop (the server stopped) while a /metrics request is open: no read of the aborted reply."""
    import socket

    from llama_launcher.ui.metrics_poller import MetricsPoller

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.05)
        poller = MetricsPoller()
        poller.start(f"http://127.0.0.1:{listener.getsockname()[1]}")
        conns: list[socket.socket] = []

        def accepted() -> bool:
            try:
                conns.append(listener.accept()[0])
            except OSError:
                pass
            return bool(conns)

        qtbot.waitUntil(accepted, timeout=10_000)  # the request is open; this server never answers
        poller.stop()
        qtbot.wait(300)
        assert poller._inflight is None and not poller.timer.isActive()
        for c in conns:
            c.close()
