"""The window reads right to a new user (issue 24): one message per fact, a stable address, words for units,
files and builds, and nothing that looks like what it is not.

Each test drives the real window through what a person sees and clicks, and asserts what is on screen:
a label's text, whether a control is enabled, that a label's full text fits its widget. The decisions
themselves are tested without Qt in test_wording.py and test_words_decisions.py.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QLabel, QWidget

from llama_launcher.core.host import network
from llama_launcher.core.llama_server import discovery
from llama_launcher.core.llama_server.offers import NO_SERVER_OFFLINE
from llama_launcher.core.models.file_problem import INCOMPLETE
from llama_launcher.core.settings import store as settings_store
from llama_launcher.core.settings.launch import AUTO_PORT
from llama_launcher.ui.main_window import TAB_SERVER, TAB_SETUP, MainWindow

from fake_server import make_fake_server
from gguf_factory import write_model
from window_helpers import WAIT, flat, open_window, value_after


def visible_labels(root: QWidget) -> list[QLabel]:
    return [lbl for lbl in root.findChildren(QLabel) if lbl.isVisible() and lbl.text().strip()]


def fits(label: QLabel) -> bool:
    """The label's whole text is on screen: wrapped into its height, or on one line within its width."""
    if label.wordWrap():
        return label.heightForWidth(label.contentsRect().width()) <= label.contentsRect().height() + 1
    return label.fontMetrics().horizontalAdvance(label.text()) <= label.contentsRect().width()


@pytest.fixture
def no_server_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A computer with no llama-server: an empty build cache, nothing on PATH, none in the usual places,
    and llama.cpp's releases unreachable (a name that never resolves, RFC 2606's .invalid)."""
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    monkeypatch.setenv("LLAMA_LAUNCHER_SERVER_CACHE", str(cache))
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    monkeypatch.delenv("LLAMA_SERVER", raising=False)
    monkeypatch.setattr(discovery, "well_known_places", lambda home=None, env=None: [])  # this machine's own installs
    monkeypatch.setenv("LLAMA_LAUNCHER_RELEASES_URL", "https://api.github.invalid/repos/ggml-org/llama.cpp/releases")
    return cache


def test_first_start_without_llama_server_says_it_once_and_offers_what_applies(qtbot, no_server_anywhere: Path,
                                                                                tmp_path: Path) -> None:
    """Point 1: no "Found on this computer" heading over nothing found, no second or third copy of the news,
    no Homebrew on Linux, and being offline said as being offline, with a way to check again."""
    w = MainWindow()  # an empty home: no settings saved
    qtbot.addWidget(w, before_close_func=lambda w: w.shutdown())
    w.show()
    panel = w.server_panel
    qtbot.waitUntil(lambda: w.tabs.currentIndex() == TAB_SERVER and panel.check_btn.isVisible(), timeout=WAIT)
    assert panel.path.text() == "none yet"
    assert not any(x.isVisible() for x in (panel.source, panel.version, panel.caps))  # no rows of "–" under it
    hardware = w.hardware_panel
    qtbot.waitUntil(lambda: hardware.cpu.text() != "detecting…", timeout=WAIT)
    assert hardware.backend.text().startswith("not asked yet: there is no llama-server to ask")
    assert not panel.detected_title.isVisible()  # nothing was found: no heading that says so
    texts = [lbl.text() for lbl in visible_labels(w)]
    said = [t for t in texts if "no llama-server" in t.lower() or "was found" in t.lower()]
    assert said == [], said  # the tab shows the offers; the banner leaves this fact to the tab
    assert not w.banner.isVisible()
    if sys.platform.startswith("linux"):
        assert not panel.pm_command.isVisible() and not any("brew" in t for t in texts)
    else:
        assert panel.pm_command.isVisible() and panel.pm_command.text() in ("brew install llama.cpp",
                                                                            "winget install llama.cpp")
    status = panel.asset_label.text()
    assert status.startswith("No download offered right now: this computer seems to be offline"), status
    assert panel.check_btn.isEnabled() and not panel.download_btn.isEnabled()
    panel.check_btn.click()  # asks again (still offline here): the same words come back
    qtbot.waitUntil(lambda: panel.check_btn.isVisible() and "offline" in panel.asset_label.text(), timeout=WAIT)
    # on another tab the banner says it, once, with the way there
    w.tabs.setCurrentIndex(TAB_SETUP)
    assert w.banner.isVisible() and w.banner.text() == f"ℹ {NO_SERVER_OFFLINE}"  # no download promised offline
    # no cmake or compiler on this PATH: the build is greyed and says what it lacks (core: test_wording)
    assert panel.build_hint.text().startswith("needs cmake and a C++ compiler, not found on this computer")
    assert not panel.build_btn.isEnabled()
    assert w.banner.button.isVisible() and w.banner.button.text() == "Open the llama-server tab"
    w.banner.button.click()
    assert w.tabs.currentIndex() == TAB_SERVER and not w.banner.isVisible()


def test_the_build_in_use_is_described_in_words(qtbot, tmp_path: Path) -> None:
    """Point 12: the llama-server tab names the methods, not '--spec-type' tokens or 'ngram-mod knobs: current'."""
    folder = tmp_path / "models"
    write_model(folder / "alpha.gguf", arch="llama", name="Alpha")
    w = open_window(qtbot, make_fake_server(tmp_path / "bin", "b11434-current"), folder)
    caps = w.server_panel.caps.text()
    assert caps.startswith("Speculative decoding: MTP, EAGLE3 head, DFlash head, DSpark head, Draft model, ngram-mod")
    assert "spec types" not in caps and "knobs" not in caps and "draft-simple" not in caps


def auto_port_start(qtbot, folder: Path, binary: Path) -> int:
    """Start the window as a user does (the settings as the last session left them) and read the port it plans."""
    w = MainWindow()
    qtbot.addWidget(w, before_close_func=lambda w: w.shutdown())
    w.show()
    qtbot.waitUntil(lambda: w.planner.plan is not None, timeout=WAIT)
    port = int(value_after(flat(w), "--port") or 0)
    assert w.launch_panel.network.port_auto.isChecked() and w.launch_panel.network.port.value() == port
    w.close()  # saves the settings, as closing the app does
    return port


def test_auto_keeps_its_port_across_starts_while_it_is_free(qtbot, tmp_path: Path) -> None:
    """Point 3: two starts in a row plan the same port, so a client set to the copied URL keeps working."""
    folder = tmp_path / "models"
    write_model(folder / "alpha.gguf", arch="llama", name="Alpha")
    binary = make_fake_server(tmp_path / "bin", "b11434-current")
    settings_store.save(settings_store.AppSettings(folders=[str(folder)], binary=str(binary), port=AUTO_PORT))
    first = auto_port_start(qtbot, folder, binary)
    assert settings_store.load().auto_port == first  # stored with the settings
    second = auto_port_start(qtbot, folder, binary)
    assert second == first


def test_auto_moves_when_its_port_is_taken_and_says_so(qtbot, tmp_path: Path) -> None:
    """Point 3: another program holds the port Auto used last time: Auto takes the next free neighbour and
    the Launch setup says so, in full, under the port."""
    folder = tmp_path / "models"
    write_model(folder / "alpha.gguf", arch="llama", name="Alpha")
    binary = make_fake_server(tmp_path / "bin", "b11434-current")
    last = network.free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", last))
        holder.listen(1)
        s = settings_store.AppSettings(folders=[str(folder)], binary=str(binary), port=AUTO_PORT, auto_port=last)
        settings_store.save(s)
        w = open_window(qtbot, binary, folder, save=False)
        port = int(value_after(flat(w), "--port") or 0)
        assert port != last and port > last
        note = w.launch_panel.network.auto_note
        assert note.isVisible() and note.text().startswith(f"Auto moved to port {port}: port {last}, which it used "
                                                           "last time, is taken now")
        assert fits(note)
        assert not w.banner.isVisible()  # the Launch setup tab says it itself
        w.tabs.setCurrentIndex(1)
        assert w.banner.isVisible() and f"Auto moved to port {port}" in w.banner.text()


def test_sizes_are_written_as_the_readme_writes_them(qtbot, tmp_path: Path) -> None:
    """Point 11: a file's size in decimal MB (a 20-byte file is '20 bytes', not '0 MB'); memory in GiB."""
    folder = tmp_path / "models"
    write_model(folder / "alpha.gguf", arch="llama", name="Alpha")
    (folder / "stub.gguf").write_bytes(b"GGUF" + b"\0" * 16)
    w = open_window(qtbot, make_fake_server(tmp_path / "bin", "b11434-current"), folder)
    table = w.models_pane.table_model
    sizes = {m.file_name: table.data(table.index(i, 4)) for i, m in enumerate(table.models)}
    assert sizes["stub.gguf"] == "20 bytes"
    alpha = next(m for m in table.models if m.file_name == "alpha.gguf")
    assert sizes["alpha.gguf"].endswith((" kB", " bytes")) and alpha.file_size < 1_000_000
    assert " GiB " in w.hardware_panel.ram.text() or " MiB " in w.hardware_panel.ram.text()


@pytest.mark.integration
def test_the_demo_models_size_is_the_readmes(qtbot, llama_server: str, demo_model: Path) -> None:
    w = open_window(qtbot, llama_server, demo_model.parent)
    table = w.models_pane.table_model
    row = next(i for i, m in enumerate(table.models) if m.path == str(demo_model))
    assert demo_model.stat().st_size == 253_113_024 and table.data(table.index(row, 4)) == "253 MB"


def test_a_truncated_file_leads_with_an_unfinished_download(qtbot, tmp_path: Path) -> None:
    """Point 12: selecting a cut-off file says what it most likely is, first, and keeps the reader's detail."""
    folder = tmp_path / "models"
    write_model(folder / "alpha.gguf", arch="llama", name="Alpha")
    whole = write_model(tmp_path / "whole.gguf", arch="llama", name="Cut", tokens=4000)
    (folder / "cut.gguf").write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    w = open_window(qtbot, make_fake_server(tmp_path / "bin", "b11434-current"), folder)
    w.models_pane.select(str(folder / "cut.gguf"))
    qtbot.waitUntil(lambda: w.planner.model is not None and w.planner.model.file_name == "cut.gguf", timeout=WAIT)
    table = w.models_pane.table_model
    row = table.row_of(str(folder / "cut.gguf"))
    assert table.data(table.index(row, 0), 3).startswith(f"cut.gguf: {INCOMPLETE} (truncated")  # the tooltip
    assert w.model_note.isVisible() and w.model_note.text().startswith(INCOMPLETE)
    assert "(truncated" in w.model_note.text() and fits(w.model_note)
    assert w.toolbar.launch_action.toolTip().startswith("Cannot launch: this file cannot be launched. " + INCOMPLETE)
    assert w.model_note.objectName() == "failureReason"  # the reason stands out; what to do below it does not
    assert w.launch_panel.unusable.isVisible() and w.launch_panel.unusable.objectName() == "muted"
    w.models_pane.select(str(folder / "alpha.gguf"))  # a good model: its note (if any) is quiet again
    qtbot.waitUntil(lambda: w.planner.model is not None and w.planner.model.file_name == "alpha.gguf", timeout=WAIT)
    assert w.model_note.objectName() == "muted" and not w.launch_panel.unusable.isVisible()


def test_the_idle_line_folds_in_the_view_and_stays_whole_in_the_file(qtbot, tmp_path: Path) -> None:
    """Point 2: a server that prints llama-server's idle line 200 times (-lv 4 with a /metrics poll a second):
    the view shows it once with its count, still counts every line, and the run's log file keeps all 200."""
    folder = tmp_path / "models"
    write_model(folder / "alpha.gguf", arch="llama", name="Alpha")
    idle = make_fake_server(tmp_path / "idle", "b11434-current", behaviour="idle")
    w = open_window(qtbot, idle, folder)
    w.launch()
    qtbot.waitUntil(lambda: w.logs.total_lines >= 201, timeout=WAIT)
    blocks = w.logs.view.toPlainText().splitlines()
    idle_blocks = [b for b in blocks if "all slots are idle" in b]
    assert len(idle_blocks) == 1 and idle_blocks[0].endswith("all slots are idle  … 200 times in a row")
    assert idle_blocks[0].startswith("0.00.000.000 I srv  update_slots")  # the first, as it was printed
    assert blocks[-1].endswith("srv  log_server_r: done")  # the line after the run is its own line
    assert w.logs.total_lines == 201  # every line accounted for: the folded ones count in their line
    status = w.logs.status.text()
    assert status.startswith("201 lines from llama-server · 199 repeats folded into the line before them")
    w.logs.filter.setCurrentIndex(0)
    w.logs.search.setText("idle")  # a search shows the folded line, with its count
    qtbot.waitUntil(lambda: "1 of " in w.logs.status.text(), timeout=WAIT)
    assert w.logs.view.toPlainText().endswith("… 200 times in a row")
    log_path = Path(w.server.log_path)
    w.stop_server()
    qtbot.waitUntil(lambda: not w.server.running, timeout=WAIT)
    written = log_path.read_text(encoding="utf-8").splitlines()
    assert sum("all slots are idle" in ln for ln in written) == 200  # the file keeps every one


def test_an_empty_models_table_says_what_to_do_and_the_folder_buttons_apply(qtbot, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Point 13: the empty table has words in it; Remove… and Reveal are off until they can do something."""
    monkeypatch.setenv("LLAMA_LAUNCHER_DEMO_DIR", str(tmp_path / "no-demo"))  # a home with no model at all
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # and none of the usual places
    w = MainWindow()
    qtbot.addWidget(w, before_close_func=lambda w: w.shutdown())
    w.show()
    pane = w.models_pane
    qtbot.waitUntil(lambda: w.catalog.result is not None, timeout=WAIT)
    assert pane.table_model.rowCount() == 0
    assert pane.empty.isVisible() and pane.empty.text().startswith("No models yet.") and fits(pane.empty)
    assert not pane.remove_btn.isEnabled() and "You have not added a folder" in pane.remove_btn.toolTip()
    assert not pane.reveal_btn.isEnabled()
    folder = tmp_path / "models"
    write_model(folder / "alpha.gguf", arch="llama", name="Alpha")
    w.catalog.add_folder(str(folder))  # what Add folder… does once the dialog answers
    qtbot.waitUntil(lambda: pane.table_model.rowCount() == 1, timeout=WAIT)
    assert not pane.empty.isVisible() and pane.remove_btn.isEnabled()
    qtbot.waitUntil(lambda: pane.reveal_btn.isEnabled(), timeout=WAIT)  # the model got selected
    pane.search.setText("zzz")
    assert pane.empty.isVisible() and pane.empty.text() == "No model matches “zzz”."


def test_the_state_is_a_status_and_the_banner_moves_nothing(qtbot, tmp_path: Path) -> None:
    """Point 13: the server's state reads as a status (a dot and words, no box like a button); a notice
    appearing or going leaves the panes where they are; a message starts as a sentence."""
    folder = tmp_path / "models"
    write_model(folder / "alpha.gguf", arch="llama", name="Alpha")
    port = network.free_port()
    w = open_window(qtbot, make_fake_server(tmp_path / "bin", "b11434-current"), folder, port=port)
    badge = w.toolbar.state_badge
    assert badge.text() == "● Not running"
    shot = w.toolbar.grab().toImage()
    inside = badge.geometry().topLeft() + badge.rect().topLeft()
    beside = w.toolbar.widgetForAction(w.toolbar.actions()[-1]).geometry().topRight()
    assert shot.pixelColor(inside.x() + 1, inside.y() + 1) == shot.pixelColor(beside.x() + 2, beside.y() + 1)
    tabs_at = w.tabs.mapTo(w, w.tabs.rect().topLeft())
    assert not w.banner.isVisible()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen(1)
        w.launch()  # the fixed port is taken: the banner says so, with the way out
        qtbot.waitUntil(lambda: w.banner.isVisible(), timeout=WAIT)
        assert w.banner.text().startswith(f"⚠ Cannot launch: port {port} is already in use")  # a sentence
        assert w.tabs.mapTo(w, w.tabs.rect().topLeft()) == tabs_at  # nothing above the panes moved
        w.banner.close_btn.click()
        assert not w.banner.isVisible() and w.tabs.mapTo(w, w.tabs.rect().topLeft()) == tabs_at
