"""The window does what its controls say: outcomes a person checks, not only that a mechanism ran.

Fast tests use a fake llama-server that answers HTTP like a ready server (edge cases such as a web UI
or a template that drops messages); the ones marked ``integration`` drive the real server.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from pathlib import Path

import psutil
import pytest
from PySide6.QtWidgets import QApplication, QFileDialog, QLabel, QScrollArea

from llama_launcher.core.host.network import free_port
from llama_launcher.core.server.process import ServerState
from llama_launcher.core.settings import store as settings_store
from llama_launcher.core.settings.launch import ModelSettings
from llama_launcher.core.tuning import store as tuning_store
from llama_launcher.ui.controllers.tune import TUNE_LOG_PREFIX

from fake_server import make_fake_server
from gguf_factory import write_model
from synthetic_mtp import write_mimo2_model
from window_helpers import WAIT, flat, open_window, send_prompt, start_tune, value_after, wait_ready

LONG_NAME = "gemma-3-270m-it-qat-Q4_K_M"


def llama_children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True)
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE and "llama-server" in " ".join(p.cmdline()[:1])]


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    write_model(folder / "gemma.gguf", arch="gemma3", name=LONG_NAME, chat_template=False, context=32768)
    write_model(folder / "plain.gguf", arch="llama", name="Plain")
    return folder


@pytest.fixture
def http_server(tmp_path: Path):
    """A fake llama-server that becomes ready on its --port; its web UI and template come from the env."""
    def make(webui: bool = False, template: str = "keeps") -> Path:
        return make_fake_server(tmp_path / f"http-{webui}-{template}", "b11434-current", behaviour="http")
    return make


# --- a first run that reads right ----------------------------------------------------------------

def test_the_model_name_is_readable_at_the_default_size_and_after_a_restart(qtbot, models: Path,
                                                                            tmp_path: Path) -> None:
    exe = make_fake_server(tmp_path / "bin", "b11434-current")
    w = open_window(qtbot, exe, models)
    assert (w.width(), w.height()) == (1280, 820)
    w.models_pane.select(str(models / "gemma.gguf"))
    qtbot.wait(50)
    need = w.models_pane.table.fontMetrics().horizontalAdvance(LONG_NAME) + 8
    assert w.models_pane.table.columnWidth(0) >= need, (w.models_pane.table.columnWidth(0), need)
    w.close()
    w2 = open_window(qtbot, exe, models, save=False)  # geometry and splitter come back from the settings
    qtbot.wait(50)
    assert w2.models_pane.table.columnWidth(0) >= need


def test_the_window_works_at_1024_by_640(qtbot, models: Path, tmp_path: Path) -> None:
    exe = make_fake_server(tmp_path / "bin", "b11434-current")
    w = open_window(qtbot, exe, models)
    assert w.minimumSizeHint().width() <= 1024 and w.minimumWidth() <= 1024
    w.resize(1024, 640)
    qtbot.waitUntil(lambda: (w.width(), w.height()) == (1024, 640), timeout=5000)
    assert w.models_pane.table.columnWidth(0) >= 150  # still a readable name
    # what does not fit scrolls instead of being clipped
    scroll = w.launch_panel.findChild(QScrollArea)
    assert scroll is not None and scroll.verticalScrollBar().maximum() > 0
    for action in (w.launch_action, w.stop_action, w.toolbar.copy_url_action):
        assert w.toolbar.widgetForAction(action).isVisible()


def test_errors_read_in_plain_words_and_the_last_plan_stays_greyed(qtbot, models: Path, tmp_path: Path) -> None:
    exe = make_fake_server(tmp_path / "bin", "b11434-current")
    w = open_window(qtbot, exe, models)
    p = w.launch_panel
    p.network.extra.setText("--temp 0.7")
    rows = p.preview.preview_args()
    memory = p.memory.badge.text()
    assert ["--temp", "0.7"] in rows
    p.network.extra.setText("--tmep 0.7")
    assert p.preview.error.text() == "this llama-server has no option --tmep — did you mean --temp?"
    assert p.preview.error.isVisibleTo(p)
    assert p.preview.preview_args() == rows and p.memory.badge.text() == memory  # not blanked
    assert not p.preview.tree.isEnabled() and not p.memory.badge.isEnabled()  # greyed: it is the last valid plan
    assert not w.launch_action.isEnabled() and "--tmep" in w.launch_action.toolTip()
    p.network.extra.setText('--temp "0.7')
    assert p.preview.error.text().startswith("a quote in the extra arguments is not closed")
    p.network.extra.setText("--temp hot")
    assert p.preview.error.text() == "--temp needs a number, not 'hot'"
    p.network.extra.setText("")
    assert p.preview.tree.isEnabled() and not p.preview.error.isVisibleTo(p)


def test_help_or_version_in_extra_arguments_is_refused_with_a_sentence(qtbot, models: Path, tmp_path: Path) -> None:
    """Issue 19, item 18: llama-server would print and exit; Launch says why instead of failing oddly."""
    exe = make_fake_server(tmp_path / "bin", "b11434-current")
    w = open_window(qtbot, exe, models)
    p = w.launch_panel
    for flag, what in (("--help", "print usage"), ("--version", "show version and build info"),
                       ("--list-devices", "print list of available devices")):
        p.network.extra.setText(f"--temp 0.7 {flag}")
        assert p.preview.error.text() == (f"{flag} cannot be used in extra arguments: it makes llama-server {what} "
                                        "and exit instead of starting the server (run it in a terminal for that)")
        assert p.preview.error.isVisibleTo(p) and not w.launch_action.isEnabled()
    p.network.extra.setText("--temp 0.7")
    assert not p.preview.error.isVisibleTo(p) and w.launch_action.isEnabled()


def test_the_context_really_used_drives_the_memory_line_and_its_warnings(qtbot, models: Path,
                                                                        tmp_path: Path) -> None:
    exe = make_fake_server(tmp_path / "bin", "b11434-current")
    w = open_window(qtbot, exe, models)
    w.models_pane.select(str(models / "gemma.gguf"))
    qtbot.waitUntil(lambda: w.planner.model is not None and w.planner.model.name == LONG_NAME and w.planner.plan is not None, timeout=WAIT)
    p = w.launch_panel
    p.network.extra.setText("-c 4096")
    argv = flat(w)
    assert argv.count("-c") == 1 and value_after(argv, "-c") == "4096"  # the user's -c is the context
    assert p.memory.badge.text().startswith("at 4,096 tokens")
    p.network.extra.setText("")
    p.memory.ctx.setValue(131072)
    assert p.memory.badge.text().startswith("at 131,072 tokens")
    # the warning sits next to the Context control, not under the preview
    assert p.memory.warnings.isVisibleTo(p) and "above the model's native 32,768" in p.memory.warnings.text()
    assert "native" not in p.preview.warnings.text()


def test_a_wrong_binary_is_refused_and_the_working_one_kept(qtbot, models: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    exe = make_fake_server(tmp_path / "bin", "b11434-current")
    w = open_window(qtbot, exe, models)
    before = (w.llama.binary.path, w.llama.caps)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: ("/bin/ls", ""))
    w.server_panel.choose_btn.click()
    qtbot.waitUntil(lambda: "was not used" in w.banner.text(), timeout=WAIT)
    assert (w.llama.binary.path, w.llama.caps) == before and w.settings_ctl.settings.binary == str(exe)
    assert w.planner.plan is not None and w.launch_action.isEnabled()  # the setup tab is not blanked
    assert "ls" in w.server_panel.problem.text()


def test_the_log_search_filters_as_you_type(qtbot, models: Path, tmp_path: Path) -> None:
    exe = make_fake_server(tmp_path / "bin", "b11434-current")
    w = open_window(qtbot, exe, models)
    w.logs.append_own([f"line {i} " + ("needle here " if i % 10 == 0 else "") + "x" * 300 for i in range(200)])
    w.logs.search.setText("needle")  # no Enter pressed
    qtbot.waitUntil(lambda: w.logs.view.document().blockCount() == 20, timeout=5000)
    assert all("needle" in ln for ln in w.logs.view.toPlainText().splitlines())
    assert w.logs.view.horizontalScrollBar().value() == 0  # matches are shown from their start
    assert w.logs.search.width() >= 180
    w.logs.search.setText("")
    qtbot.waitUntil(lambda: w.logs.view.document().blockCount() == 200, timeout=5000)


def test_small_things_in_plain_words(qtbot, models: Path, tmp_path: Path) -> None:
    exe = make_fake_server(tmp_path / "bin", "b11434-current")
    one = tmp_path / "one"
    write_model(one / "only.gguf", name="Only")
    w = open_window(qtbot, exe, one)
    assert w.models_pane.status.text().startswith("1 model ")
    if not w.llama.hw.gpus:
        assert w.hardware_panel.gpus.text() in ("No NVIDIA GPU driver found", "None found")
    labels = [lbl.text() for lbl in w.hardware_panel.findChildren(QLabel)]
    assert "Runs on" in labels and not any("Planner" in t for t in labels)
    # a model without a chat template is said to be a base model, where the model is shown
    w.settings_ctl.settings.folders = [str(models)]
    w.catalog.rescan()
    qtbot.waitUntil(lambda: len(w.models_pane.table_model.models) == 2, timeout=WAIT)
    w.models_pane.select(str(models / "gemma.gguf"))
    qtbot.waitUntil(lambda: w.planner.model is not None and w.planner.model.name == LONG_NAME, timeout=WAIT)
    assert w.model_note.isVisibleTo(w) and w.model_note.text().startswith("Base model")
    assert "built-in 'gemma' template" in w.model_note.text() and w.live.completion_mode
    assert "plain text completion" in w.live.try_title.text()
    # the note follows what the launch will pass: the user's own template wins over the built-in one
    w.launch_panel.network.extra.setText("--chat-template chatml")
    qtbot.waitUntil(lambda: "Your extra arguments choose the chat template." in w.model_note.text(), timeout=WAIT)
    assert "built-in 'gemma'" not in w.model_note.text()


# --- the server: port, LAN, web UI, template, status bar ---------------------------------------------

def test_port_setting_is_used_remembered_and_a_taken_port_explained(qtbot, models: Path, http_server,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    exe = http_server()
    port = free_port()
    w = open_window(qtbot, exe, models, port=port)
    assert value_after(flat(w), "--port") == str(port) and not w.launch_panel.network.port_auto.isChecked()
    w.launch()
    wait_ready(qtbot, w)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:  # it listens there
        assert resp.status == 200
    w.stop_server()
    qtbot.waitUntil(lambda: w.server.state is ServerState.STOPPED, timeout=WAIT)
    assert w.statusBar().currentMessage() == "llama-server stopped"  # the status bar follows the state
    w.close()
    w2 = open_window(qtbot, exe, models, save=False)
    assert w2.launch_panel.network.port.value() == port and value_after(flat(w2), "--port") == str(port)
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", port))
        holder.listen(1)
        w2.launch()
        qtbot.waitUntil(lambda: "already in use" in w2.banner.text(), timeout=WAIT)  # checked in the server's thread
        assert w2.server.state is ServerState.IDLE and w2.server.runner is None  # nothing started
        text = w2.banner.text()
        holder_name = psutil.Process().name()  # this test process holds the port: python or pytest
        assert f"port {port} is already in use by {holder_name} (pid {os.getpid()})" in text  # named
        assert w2.banner.button.isVisibleTo(w2) and "Launch on port" in w2.banner.button.text()
        w2.banner.button.click()  # one click: a free port, and the launch the user asked for
        assert w2.settings_ctl.settings.port != port and value_after(flat(w2), "--port") == str(w2.settings_ctl.settings.port)
        wait_ready(qtbot, w2)
    with urllib.request.urlopen(f"http://127.0.0.1:{w2.settings_ctl.settings.port}/health", timeout=5) as resp:
        assert resp.status == 200
    assert settings_store.load().port == w2.settings_ctl.settings.port  # remembered
    w2.stop_server()
    qtbot.waitUntil(lambda: w2.server.state is ServerState.STOPPED, timeout=WAIT)


def test_lan_shows_the_addresses_other_devices_use(qtbot, models: Path, tmp_path: Path) -> None:
    from llama_launcher.core.host.network import lan_addresses

    exe = make_fake_server(tmp_path / "bin", "b11434-current")
    port = free_port()
    w = open_window(qtbot, exe, models, port=port)
    w.launch_panel.network.lan.setChecked(True)
    text = w.launch_panel.network.lan_urls.text()
    assert "127.0.0.1" not in text and "0.0.0.0" not in text
    addresses = lan_addresses()
    assert addresses, "this test machine has a non-loopback address"
    assert f"http://{addresses[0]}:{port}/v1" in text
    assert w.launch_panel.network.api_key.text().startswith("ll-") and w.launch_panel.network.copy_lan.isEnabled()


@pytest.mark.parametrize("webui", [True, False])
def test_the_web_ui_button_follows_what_the_server_serves(qtbot, models: Path, http_server, webui: bool,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_WEBUI", "1" if webui else "0")
    w = open_window(qtbot, http_server(webui), models)
    w.launch()
    wait_ready(qtbot, w)
    qtbot.waitUntil(lambda: w.server.checks is not None, timeout=WAIT)
    assert w.toolbar.webui_action.isEnabled() is webui
    if not webui:
        assert "built without its web UI" in w.toolbar.webui_action.toolTip()
    w.toolbar.copy_url_action.trigger()
    assert w.toolbar.copy_url_action.text() == "Copied"  # feedback
    assert QApplication.clipboard().text() == w.toolbar.endpoint.text()
    w.stop_server()
    qtbot.waitUntil(lambda: w.server.state is ServerState.STOPPED, timeout=WAIT)
    assert not w.toolbar.webui_action.isEnabled()


def test_a_template_that_drops_messages_is_shown_in_the_window(qtbot, models: Path, http_server,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_TEMPLATE", "drop")
    w = open_window(qtbot, http_server(template="drop"), models)
    w.launch()
    wait_ready(qtbot, w)
    qtbot.waitUntil(lambda: w.server.checks is not None, timeout=WAIT)
    assert "The chat template drops your messages" in w.banner.text()  # the banner speaks in sentences
    assert w.live.verdict_box.isVisibleTo(w.live) and "drops your messages" in w.live.verdict.text()
    w.stop_server()
    qtbot.waitUntil(lambda: w.server.state is ServerState.STOPPED, timeout=WAIT)


# --- with the real server ----------------------------------------------------------------------

def _slots_idle(base_url: str) -> bool:
    with urllib.request.urlopen(base_url + "/slots", timeout=5) as resp:
        return not any(s.get("is_processing") for s in json.loads(resp.read()))


@pytest.mark.integration
def test_stop_reply_ends_the_stream_and_the_servers_work(qtbot, llama_server: str, demo_model: Path) -> None:
    w = open_window(qtbot, llama_server, demo_model.parent, models={str(demo_model): ModelSettings(threads=2)})
    w.launch()
    wait_ready(qtbot, w, 240_000)
    w.live.max_tokens.setValue(256)
    w.live.prompt.setPlainText("Write a long story about a lighthouse keeper.")
    w.live.send_btn.click()
    qtbot.waitUntil(lambda: w.live._streamed >= 5, timeout=120_000)
    assert w.live.reply_status.text().startswith("streaming…")  # not "sending…" while it streams
    w.live.stop_btn.click()
    qtbot.waitUntil(lambda: w.chat.last is not None, timeout=WAIT)
    result = w.chat.last
    assert result.stopped and result.text  # it ended as stopped, with what was made so far ...
    assert result.speed is None or (result.speed.predicted_n or 0) < 256  # ... before the reply was complete
    assert w.live.reply_status.text().startswith("stopped")
    qtbot.waitUntil(lambda: _slots_idle(w.server.base_url), timeout=WAIT)  # the server stopped generating
    w.stop_server()
    qtbot.waitUntil(lambda: w.server.state is ServerState.STOPPED, timeout=WAIT)


@pytest.mark.integration
def test_tune_owns_the_machine_and_cancel_stops_it(qtbot, llama_server: str, demo_model: Path) -> None:
    w = open_window(qtbot, llama_server, demo_model.parent, models={str(demo_model): ModelSettings(threads=2)})
    start_tune(w)
    assert w.tuner.running and not w.launch_action.isEnabled() and "Tune is measuring" in w.launch_action.toolTip()
    w.launch()  # a second llama-server beside Tune's would skew the measurement: nothing happens
    assert w.server.state is ServerState.IDLE
    qtbot.waitUntil(lambda: "measuring" in w.launch_panel.tune.stage.text() and bool(llama_children()),
                    timeout=240_000)
    stage = w.launch_panel.tune.stage.text()
    assert stage.startswith("[") and ": measuring" in stage  # which setting, which stage
    assert w.launch_panel.tune.bar.value() > 0  # the bar has moved once the first server measures
    assert any(TUNE_LOG_PREFIX in ln for ln in w.logs.history)  # Tune's own server log, marked as Tune's
    w.launch_panel.tune.cancel_button.click()
    qtbot.waitUntil(lambda: not llama_children(), timeout=WAIT)  # the server in use stops (a tune would go on)
    qtbot.waitUntil(lambda: not w.tuner.running, timeout=WAIT)
    assert "tuning cancelled" in w.launch_panel.tune.label.text()
    assert any(ln.startswith("[tune] ") for ln in w.logs.history)  # Tune's own server log, marked as Tune's
    assert not tuning_store.store_file().exists()  # nothing stored
    assert w.launch_action.isEnabled()
    qtbot.wait(1500)
    assert not llama_children()  # and tune did not go on to the next setting


@pytest.mark.integration
def test_cancel_at_once_after_tune_stops_it_before_any_server(qtbot, llama_server: str, demo_model: Path) -> None:
    w = open_window(qtbot, llama_server, demo_model.parent, models={str(demo_model): ModelSettings(threads=2)})
    start_tune(w)
    w.launch_panel.tune.cancel_button.click()  # before the tune thread has even begun the job
    qtbot.waitUntil(lambda: not w.tuner.running, timeout=WAIT)
    assert "tuning cancelled" in w.launch_panel.tune.label.text()
    assert not tuning_store.store_file().exists()  # nothing measured, nothing stored
    qtbot.wait(1500)
    assert not llama_children() and not w.tuner.running  # no server started after the Cancel


@pytest.mark.integration
def test_a_draft_model_from_the_catalog_drafts_and_the_live_panel_shows_it(qtbot, llama_server: str,
                                                                         tmp_path: Path) -> None:
    folder = tmp_path / "pair"
    target = write_mimo2_model(folder / "target.gguf", with_mtp=False, hidden=128, n_trunk=4, ff=256, name="target")
    small = write_mimo2_model(folder / "small.gguf", with_mtp=False, name="small")
    write_model(folder / "other.gguf", name="other", tokens=300)  # a different tokenizer: not offered
    w = open_window(qtbot, llama_server, folder, models={str(target): ModelSettings(threads=1)})
    w.models_pane.select(str(target))
    qtbot.waitUntil(lambda: w.planner.model is not None and w.planner.model.name == "target" and w.planner.plan is not None, timeout=WAIT)
    combo = w.launch_panel.speculative.draft_model
    offered = [combo.itemData(i) for i in range(combo.count())]
    assert str(small) in offered and str(folder / "other.gguf") not in offered
    assert "other: a different tokenizer" in w.launch_panel.speculative.draft_others.text()
    combo.setCurrentIndex(offered.index(str(small)))
    assert value_after(flat(w), "--spec-draft-model") == str(small)
    assert w.planner.plan.memory.draft_model_mib > 0 and "draft-simple" in value_after(flat(w), "--spec-type")
    w.launch()
    wait_ready(qtbot, w, 240_000)
    send_prompt(qtbot, w, "hello world", max_tokens=64)
    assert w.chat.last.speed.draft_n and w.chat.last.speed.draft_accepted > 0
    assert w.live.accept_stat.value.text().endswith("%") and w.live.accept_stat.value.text() != "0.0 %"
    w.stop_server()
    qtbot.waitUntil(lambda: w.server.state is ServerState.STOPPED, timeout=WAIT)


@pytest.mark.integration
def test_the_live_panel_says_when_speculation_is_losing(qtbot, llama_server: str, tmp_path: Path) -> None:
    model = write_mimo2_model(tmp_path / "m" / "wrong-MTP.gguf", with_mtp=True, mtp_head="wrong", name="wrong MTP")
    w = open_window(qtbot, llama_server, model.parent,
                    models={str(model): ModelSettings(modes={"mtp": "on", "ngram-mod": "off"}, threads=1)})
    assert value_after(flat(w), "--spec-type") == "draft-mtp"
    w.launch()
    wait_ready(qtbot, w, 240_000)
    send_prompt(qtbot, w, "hello world", max_tokens=400)
    assert w.chat.last.speed.draft_n and w.chat.last.speed.draft_accepted == 0
    assert w.live.verdict_box.isVisibleTo(w.live)
    assert w.live.verdict.text().startswith("⚠ MTP is probably slowing this model down: 0% of drafts accepted")
    assert w.live.verdict_tune.isVisibleTo(w.live)
    w.stop_server()
    qtbot.waitUntil(lambda: w.server.state is ServerState.STOPPED, timeout=WAIT)


@pytest.mark.integration
def test_the_memory_line_shows_llama_cpps_projection_and_then_what_the_launch_used(qtbot, llama_server: str,
                                                                                  demo_model: Path) -> None:
    from llama_launcher.core.llama_server.provisioning import FIT_TOOL

    if not (Path(llama_server).parent / FIT_TOOL).is_file():
        pytest.fail(f"{FIT_TOOL} is not beside {llama_server}: run 'llama-launcher get-server'")
    w = open_window(qtbot, llama_server, demo_model.parent, models={str(demo_model): ModelSettings(threads=2, ctx=4096)})
    # llama.cpp's projection arrives from the memory worker (llama-fit-params) and is shown with ours
    qtbot.waitUntil(lambda: "llama.cpp" in w.launch_panel.memory.badge.text(), timeout=120_000)
    assert w.planner.plan.memory.llama_cpp_mib is not None
    w.launch()
    wait_ready(qtbot, w, 240_000)
    w.stop_server()
    qtbot.waitUntil(lambda: w.server.state is ServerState.STOPPED, timeout=WAIT)
    # the server's own figures (printed at exit with -lv 4) now decide: "learned from your last launch"
    qtbot.waitUntil(lambda: "learned from your last launch" in w.launch_panel.memory.badge.text(), timeout=WAIT)
    assert any("memory learned from this launch" in ln for ln in w.logs.history)
