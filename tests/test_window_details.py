"""Details a person trips over in the window: found by walking the real app as a new user would.

Each test names the outcome the person sees: scrolling the form changes nothing, a search does not
switch the model being set up, the Auto item says what Auto does, a running server keeps the key it
was started with, the last model's reply does not linger, and so on.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QScrollArea

from llama_launcher.core.host.network import free_port
from llama_launcher.core.models.model_info import format_params
from llama_launcher.core.server.log_batches import LogBatch
from llama_launcher.core.server.process import ServerState
from llama_launcher.core.settings.launch import AUTO_PORT
from llama_launcher.core.tuning.tune import _TuneRun
from llama_launcher.ui.main_window import MainWindow

from fake_server import make_fake_server
from gguf_factory import write_model
from window_helpers import WAIT, flat, open_window


def select(qtbot, w: MainWindow, path: Path) -> None:
    w.models_pane.select(str(path))
    qtbot.waitUntil(lambda: w.planner.model is not None and w.planner.model.path == str(path) and w.planner.plan is not None, timeout=WAIT)


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    write_model(folder / "alpha.gguf", arch="llama", name="Alpha")
    write_model(folder / "beta.gguf", arch="llama", name="Beta")
    write_model(folder / "tiny-mtp.gguf", arch="qwen35", name="Tiny MTP", blocks=3, nextn=1)
    return folder


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    return make_fake_server(tmp_path / "bin", "b11434-current")


@pytest.fixture
def http_fake(tmp_path: Path) -> Path:
    """Answers like a ready llama-server; with a key (file or LLAMA_API_KEY) it refuses requests without it."""
    return make_fake_server(tmp_path / "http", "b11434-current", behaviour="http")


def wheel(widget, delta: int = -120) -> None:
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    ev = QWheelEvent(pos, widget.mapToGlobal(pos), QPoint(0, 0), QPoint(0, delta), Qt.MouseButton.NoButton,
                     Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, ev)


def test_scrolling_the_setup_changes_no_setting_until_a_control_is_clicked(qtbot, models: Path, fake: Path) -> None:
    w = open_window(qtbot, fake, models)
    w.resize(1024, 640)
    p = w.launch_panel
    p.advanced.toggle.setChecked(True)
    scroll = p.findChild(QScrollArea)
    qtbot.waitUntil(lambda: scroll.verticalScrollBar().maximum() > 0, timeout=5000)
    before = (p.memory.ctx.value(), p.speculative.mode["ngram-mod"].currentIndex(), p.advanced.threads.value(), p.speculative.draft.value(), flat(w))
    for control in (p.memory.ctx, p.speculative.mode["ngram-mod"], p.advanced.threads, p.speculative.draft):
        wheel(control)
    assert (p.memory.ctx.value(), p.speculative.mode["ngram-mod"].currentIndex(), p.advanced.threads.value(), p.speculative.draft.value(), flat(w)) == before
    assert scroll.verticalScrollBar().value() > 0  # the wheel scrolled the form instead
    p.advanced.threads.setFocus()  # clicked or tabbed into: now the wheel is the user's intent
    qtbot.waitUntil(p.advanced.threads.hasFocus, timeout=5000)
    wheel(p.advanced.threads, 120)
    assert p.advanced.threads.value() != before[2]


def test_a_search_never_switches_the_model_being_set_up(qtbot, models: Path, fake: Path) -> None:
    w = open_window(qtbot, fake, models)
    select(qtbot, w, models / "beta.gguf")
    w.models_pane.search.setText("alpha")  # Beta is hidden; Qt would move the selection to Alpha
    qtbot.wait(100)
    assert w.planner.model.name == "Beta" and "Beta" in w.model_title.text()
    assert "Beta stays selected" in w.statusBar().currentMessage()
    w.models_pane.search.setText("")  # visible again, and shown selected
    assert w.models_pane.current().name == "Beta" and w.planner.model.name == "Beta"
    w.models_pane.search.setText("alp")
    w.models_pane.search.returnPressed.emit()  # Enter: the first match becomes the selection
    qtbot.waitUntil(lambda: w.planner.model is not None and w.planner.model.name == "Alpha", timeout=WAIT)


def test_each_auto_item_says_what_auto_does_now(qtbot, models: Path, fake: Path) -> None:
    w = open_window(qtbot, fake, models)
    select(qtbot, w, models / "tiny-mtp.gguf")
    p = w.launch_panel
    # a tiny MTP model on the CPU: Auto keeps MTP off (below 3B) and runs ngram-mod
    assert p.speculative.mode["mtp"].itemText(0) == "Auto (off)"  # short: why goes on the line under it
    assert p.speculative.auto_why["mtp"].text().startswith("Off: the model is below 3B (")
    assert p.speculative.mode["ngram-mod"].itemText(0) == "Auto (on)" and "ngram-mod" in w.planner.plan.speculative.methods
    assert p.speculative.draft_model.itemText(0) == "Auto (none suitable)"
    p.speculative.mode["ngram-mod"].setCurrentIndex(p.speculative.mode["ngram-mod"].findData("off"))
    qtbot.waitUntil(lambda: "ngram-mod" not in w.planner.plan.speculative.methods, timeout=5000)
    p.speculative.mode["mtp"].setCurrentIndex(p.speculative.mode["mtp"].findData("on"))
    qtbot.waitUntil(lambda: "mtp" in w.planner.plan.speculative.methods, timeout=5000)
    assert p.speculative.mode["mtp"].currentText() == "On"


def test_a_running_server_keeps_the_key_it_was_started_with(qtbot, models: Path, http_fake: Path) -> None:
    w = open_window(qtbot, http_fake, models, lan=True)
    select(qtbot, w, models / "alpha.gguf")
    assert w.planner.api_key is not None and "--host" in flat(w) and "0.0.0.0" in flat(w)
    w.launch()
    qtbot.waitUntil(lambda: w.server.state in (ServerState.READY, ServerState.FAILED), timeout=WAIT)
    assert w.server.state is ServerState.READY, w.banner.text()
    shown = w.toolbar.endpoint.text()

    def ask(text: str) -> str:
        w.live.prompt.setPlainText(text)
        w.live.send_btn.click()
        qtbot.waitUntil(lambda: w.live.send_btn.isEnabled(), timeout=WAIT)
        return w.live.reply.toPlainText() or w.live.reply_status.text()

    assert ask("first") == "echo: first"
    w.launch_panel.network.lan.setChecked(False)  # LAN off while running: applies at the next launch
    assert "applies at the next launch" in w.statusBar().currentMessage()
    assert ask("second") == "echo: second"  # still sent with the key the server was started with
    w.launch_panel.network.lan.setChecked(True)
    w.launch_panel.network.new_key.click()  # a new key while running: the old one stays in use until a relaunch
    assert ask("third") == "echo: third"
    assert w.toolbar.endpoint.text() == shown
    w.stop_server()
    qtbot.waitUntil(lambda: w.server.state is ServerState.STOPPED, timeout=WAIT)


def test_another_model_does_not_show_the_last_ones_reply(qtbot, models: Path, fake: Path) -> None:
    w = open_window(qtbot, fake, models)
    select(qtbot, w, models / "alpha.gguf")
    w.live.append_reply("an old answer")
    w.live.reply_status.setText("12.0 decode t/s")
    w.live.show_own(None)
    select(qtbot, w, models / "beta.gguf")
    assert w.live.reply.toPlainText() == "" and w.live.reply_status.text() == ""


def test_the_log_footer_returns_to_the_count_after_a_search(qtbot, models: Path, fake: Path) -> None:
    w = open_window(qtbot, fake, models)
    w.logs.append_batch(LogBatch(w.logs.run, tuple(f"line {i}" + (" needle" if i % 2 else "") for i in range(10))))
    w.logs.search.setText("needle")
    qtbot.waitUntil(lambda: "contain 'needle'" in w.logs.status.text(), timeout=5000)
    w.logs.search.setText("")
    qtbot.waitUntil(lambda: w.logs.status.text().startswith("10 lines from llama-server"), timeout=5000)
    w.logs.append_own(["x" * 2000])  # one very long line: the view stays at its left edge
    assert w.logs.view.horizontalScrollBar().value() == 0


def test_the_models_table_is_not_clipped_at_the_smallest_window(qtbot, models: Path, fake: Path) -> None:
    w = open_window(qtbot, fake, models)
    for size in ((1024, 640), (w.minimumWidth(), w.minimumHeight())):
        w.resize(*size)
        qtbot.waitUntil(lambda size=size: (w.width(), w.height()) == size, timeout=5000)
        qtbot.wait(50)
        pane, table = w.models_pane, w.models_pane.table
        assert table.width() >= table.minimumWidth() and pane.width() >= table.width()
        assert table.geometry().right() <= pane.width()  # the last column is inside the pane


def test_the_port_reason_says_fixed_or_auto(qtbot, models: Path, fake: Path) -> None:
    port = free_port()
    w = open_window(qtbot, fake, models, port=port)
    reasons = {tuple(f.args): f.reason for f in w.planner.plan.flags}
    assert reasons[("--port", str(port))] == "the port you chose, the same at every launch"
    w.launch_panel.network.port_auto.setChecked(True)
    qtbot.waitUntil(lambda: w.settings_ctl.settings.port == AUTO_PORT, timeout=5000)
    reasons = {f.args[0]: f.reason for f in w.planner.plan.flags if f.args}
    assert reasons["--port"] == "Port is Auto: free right now (the window keeps it at the next start while it stays free)"


def test_vision_is_offered_only_with_a_projector(qtbot, tmp_path: Path, fake: Path) -> None:
    folder = tmp_path / "vision"
    write_model(folder / "seeing" / "seeing.gguf", arch="gemma3", name="Seeing")  # a projector sits next to it
    write_model(folder / "seeing" / "mmproj-seeing.gguf", arch="clip", name="Seeing projector")
    write_model(folder / "blind" / "blind.gguf", arch="llama", name="Blind")
    w = open_window(qtbot, fake, folder)
    select(qtbot, w, folder / "blind" / "blind.gguf")
    assert not w.launch_panel.advanced.vision.isEnabled() and "no vision projector file, mmproj-*.gguf," in w.launch_panel.advanced.vision.text()
    select(qtbot, w, folder / "seeing" / "seeing.gguf")
    assert w.planner.model.mmproj, "the catalog pairs mmproj-seeing.gguf with seeing.gguf"
    assert w.launch_panel.advanced.vision.isEnabled() and "mmproj-seeing.gguf" in w.launch_panel.advanced.vision.text()


# --- small pure helpers behind what the window shows ---------------------------------------------

def test_parameter_counts_below_a_million_read_in_thousands() -> None:
    assert [format_params(n) for n in (153_000, 999, 268_000_000, 2_000_000_000, 0)] == \
        ["153K", "1K", "268M", "2.00B", "-"]


def test_tune_estimates_the_time_left_within_a_step() -> None:
    seen = []
    r = _TuneRun.__new__(_TuneRun)
    r.progress, r.planned, r.step = seen.append, 4, 1
    r.t0 = time.monotonic() - 7.0
    r._report("off", "loading")
    r._report("off", "measuring code")  # a third of the first step done in 7 s: about 73 s left
    assert seen[0].eta_s is None and seen[1].eta_s == pytest.approx(7.0 / 0.35 * 3.65, rel=0.05)
    assert "left" in seen[1].text()
