"""The window with models as they are published today (issue 22), driven through its visible controls.

Heads under their target and not launchable, MTP from the head, the newer ngram types and the
drafters' knobs in Advanced, the D01/D02 warning, the fallback once (a fake llama-server that aborts
on any speculative flag), acceptance per draft position in the Live panel (a recorded b11434
``/metrics`` answer; the real b11434 with the split pair in the integration test at the end).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from llama_launcher.core.server.process import ServerState
from llama_launcher.core.settings.launch import ModelSettings
from llama_launcher.core.speculative.methods import SpecMode
from llama_launcher.ui.launch.advanced_box import ADVANCED_METHODS
from llama_launcher.ui.main_window import MainWindow
from llama_launcher.ui.model_table import HEAD_ROLE

from fake_server import make_fake_server
from published_pairs import write_qwen35_head, write_qwen35_target
from synthetic_mtp import write_mimo2_model, write_mimo2_split
from window_helpers import WAIT, flat, open_window, send_prompt, value_after

METRICS = Path(__file__).parent / "fixtures" / "metrics"


@pytest.fixture
def published(tmp_path: Path) -> Path:
    folder = tmp_path / "qwen"
    write_qwen35_target(folder / "Qwen3.6-8B-Q4_K_M.gguf")
    write_qwen35_target(folder / "Qwen3.6-8B-Q8_0.gguf")
    write_qwen35_head(folder / "mtp-Qwen3.6-8B-Q8_0.gguf")
    return folder


def rows(w: MainWindow) -> list[str]:
    proxy = w.models_pane.proxy
    return [proxy.index(r, 0).data() for r in range(proxy.rowCount())]


def select(qtbot, w: MainWindow, path: Path) -> None:
    w.models_pane.select(str(path))
    qtbot.waitUntil(lambda: w.planner.model is not None and w.planner.model.path == str(path)
                    and w.planner.plan is not None, timeout=WAIT)


def test_the_head_is_listed_under_each_target_and_cannot_be_selected(qtbot, tmp_path: Path, published: Path) -> None:
    w = open_window(qtbot, make_fake_server(tmp_path / "bin", "b11434-recorded"), published)
    head_text = "└ MTP head: mtp-Qwen3.6-8B-Q8_0.gguf, 1.5 GiB"
    assert rows(w) == ["Qwen3.6 8B", head_text, "Qwen3.6 8B", head_text]
    proxy = w.models_pane.proxy
    assert [proxy.index(r, 6).data() for r in range(4)] == ["MTP", "head", "MTP", "head"]  # MTP from the head
    table = w.models_pane.table
    table.sortByColumn(4, Qt.SortOrder.DescendingOrder)  # by size, the other way round: still under its model
    assert rows(w)[1] == head_text and rows(w)[3] == head_text
    assert "1 speculator head" in w.models_pane.status.text()
    head_index = proxy.index(1, 0)
    assert not proxy.flags(head_index) & Qt.ItemFlag.ItemIsSelectable
    assert "not a model and cannot be launched on its own" in head_index.data(Qt.ItemDataRole.ToolTipRole)
    table.setCurrentIndex(proxy.index(0, 0))
    qtbot.waitUntil(lambda: w.planner.model is not None, timeout=WAIT)
    target = w.planner.model
    table.setFocus()
    qtbot.keyClick(table, Qt.Key.Key_Down)  # onto the head row, as a user would with the keys
    assert proxy.data(table.currentIndex(), HEAD_ROLE) is None  # back on a model
    assert w.planner.model is not None and w.planner.model.path == target.path
    assert "mtp-Qwen3.6-8B-Q8_0.gguf is an MTP head: it drafts for" in w.statusBar().currentMessage()


def test_mtp_runs_from_the_head_shown_under_the_mtp_row(qtbot, tmp_path: Path, published: Path) -> None:
    w = open_window(qtbot, make_fake_server(tmp_path / "bin", "b11434-recorded"), published)
    select(qtbot, w, published / "Qwen3.6-8B-Q4_K_M.gguf")
    spec = w.launch_panel.speculative
    assert spec.mtp_head.isVisibleTo(w.launch_panel)
    assert spec.mtp_head.text().startswith("MTP head: mtp-Qwen3.6-8B-Q8_0.gguf, 1.5 GiB")
    argv = flat(w)
    assert "draft-mtp" in value_after(argv, "--spec-type").split(",")  # 9B: Auto engages MTP, from the head
    assert value_after(argv, "--spec-draft-model") == str(published / "mtp-Qwen3.6-8B-Q8_0.gguf")
    assert spec.mode["mtp"].itemText(0) == "Auto (on)"
    badge = w.launch_panel.memory.badge
    assert "MTP head 1,516" in badge.text() and "draft model" not in badge.text()  # its own tensors, not a model
    assert "MTP head: 1,516 MiB (mtp-Qwen3.6-8B-Q8_0.gguf: its own tensors, not a second model)" in badge.toolTip()


def test_the_newer_ngram_types_and_the_drafters_knobs_are_in_advanced(qtbot, tmp_path: Path) -> None:
    model = write_mimo2_model(tmp_path / "m" / "tiny-MTP.gguf", with_mtp=True)
    w = open_window(qtbot, make_fake_server(tmp_path / "bin", "b11434-recorded"), model.parent)
    p = w.launch_panel
    assert {m.id for m in ADVANCED_METHODS} == {"ngram-simple", "ngram-map-k", "ngram-map-k4v", "ngram-cache"}
    assert not set(p.speculative.mode) & set(p.advanced.mode)  # not in the main box
    p.advanced.toggle.setChecked(True)
    simple = p.advanced.mode["ngram-simple"]
    assert simple.itemText(0) == "Auto (off)"
    assert p.advanced.auto_why["ngram-simple"].text() == "Off: Auto uses it only when Tune measured it faster on this machine"
    assert p.advanced.auto_why["ngram-simple"].isVisibleTo(p)
    simple.setCurrentIndex(simple.findData("on"))
    p.advanced.knobs["ngram_simple_size_n"].setValue(6)
    argv = flat(w)
    assert value_after(argv, "--spec-type") == "ngram-mod,ngram-simple"
    assert value_after(argv, "--spec-ngram-simple-size-n") == "6"
    mtp = p.speculative.mode["mtp"]
    mtp.setCurrentIndex(mtp.findData("on"))
    p.advanced.draft_p_min.setValue(0.4)
    p.advanced.draft_cache_type.setCurrentIndex(p.advanced.draft_cache_type.findData("q8_0"))
    argv = flat(w)
    assert value_after(argv, "--spec-draft-p-min") == "0.4" and value_after(argv, "--spec-draft-type-k") == "q8_0"
    stored = w.settings_ctl.settings.model(str(model))
    assert stored.draft_p_min == 0.4 and stored.mode("ngram-simple") is SpecMode.ON  # kept for this model


def test_d01_the_window_says_ngram_mod_was_left_out(qtbot, tmp_path: Path) -> None:
    model = write_mimo2_model(tmp_path / "m" / "tiny-MTP.gguf", with_mtp=True)
    w = open_window(qtbot, make_fake_server(tmp_path / "bin", "fork-mtp-no-ngram-knobs"), model.parent,
                    models={str(model): ModelSettings(modes={"mtp": SpecMode.ON})})
    argv = flat(w)
    assert value_after(argv, "--spec-type") == "draft-mtp"  # CPU: the chain without ngram-mod
    warnings = w.launch_panel.preview.warnings.text()
    assert "ngram-mod is left out: this llama-server lists ngram-mod but not its knobs" in warnings
    why = w.launch_panel.speculative.why["ngram-mod"]
    assert why.isVisibleTo(w.launch_panel) and "no ngram-mod knobs" in why.text()


def test_a_start_that_speculation_crashes_falls_back_once_and_says_so(qtbot, tmp_path: Path) -> None:
    model = write_mimo2_model(tmp_path / "m" / "tiny-MTP.gguf", with_mtp=True)
    binary = make_fake_server(tmp_path / "bin", "b11434-recorded", behaviour="spec-abort")
    w = open_window(qtbot, binary, model.parent, models={str(model): ModelSettings(modes={"mtp": SpecMode.ON})})
    assert "draft-mtp" in value_after(flat(w), "--spec-type")
    w.toolbar.launch_action.trigger()
    qtbot.waitUntil(lambda: w.server.state is ServerState.READY, timeout=WAIT)
    banner = w.banner.text()
    assert "MTP stopped the server from loading: started without it (and without ngram-mod). Log: " in banner
    running = w.server.launch_info
    assert running is not None and "--spec-type" not in running.plan.argv
    assert any("MTP block missing nextn.eh_proj" in line for line in w.logs.history)
    assert w.settings_ctl.settings.model(str(model)).mode("mtp") is SpecMode.ON  # the user's choice is untouched
    # Auto remembers it for this model and binary: set MTP back to Auto and its item says why it is off
    mtp = w.launch_panel.speculative.mode["mtp"]
    mtp.setCurrentIndex(mtp.findData("auto"))
    why = w.launch_panel.speculative.auto_why["mtp"]
    qtbot.waitUntil(lambda: why.text().startswith("Off: MTP stopped this model from loading with this llama-server"),
                    timeout=WAIT)
    assert mtp.itemText(0) == "Auto (off)" and why.isVisibleTo(w.launch_panel)
    w.stop_server()
    qtbot.waitUntil(lambda: w.server.state is ServerState.STOPPED, timeout=WAIT)


def test_acceptance_per_draft_position_and_its_advice_in_the_live_panel(qtbot, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    model = write_mimo2_model(tmp_path / "m" / "tiny-MTP.gguf", with_mtp=True)
    monkeypatch.setenv("FAKE_METRICS", str(METRICS / "b11434-mtp-head-n4-noisy.metrics.txt"))
    binary = make_fake_server(tmp_path / "bin", "b11434-recorded", behaviour="http")
    w = open_window(qtbot, binary, model.parent,
                    models={str(model): ModelSettings(modes={"mtp": SpecMode.ON, "ngram-mod": SpecMode.OFF},
                                                      draft_n_max=4)})
    w.toolbar.launch_action.trigger()
    qtbot.waitUntil(lambda: w.server.state is ServerState.READY, timeout=WAIT)
    live = w.live
    qtbot.waitUntil(lambda: live.positions.isVisibleTo(live), timeout=WAIT)
    assert live.positions.text() == "accepted by draft position: 1: 67%  2: 38%  3: 25%  4: 13% (52 steps)"
    assert live.positions_advice.text() == "⚠ position 4 is rarely accepted: a draft length of 3 may be faster"
    w.stop_server()
    qtbot.waitUntil(lambda: w.server.state is ServerState.STOPPED, timeout=WAIT)


@pytest.mark.integration
def test_the_real_b11434_runs_the_split_pair_from_the_window(qtbot, llama_server: str, tmp_path: Path) -> None:
    target, head = write_mimo2_split(tmp_path / "pair")
    w = open_window(qtbot, llama_server, target.parent,
                    models={str(target): ModelSettings(modes={"mtp": SpecMode.ON}, threads=1, ctx=2048)})
    assert rows(w) == ["tiny mimo2", f"└ MTP head: mtp-tiny-mimo2.gguf, {head.stat().st_size / 1024:.0f} KiB"]
    select(qtbot, w, target)
    assert value_after(flat(w), "--spec-draft-model") == str(head)
    w.toolbar.launch_action.trigger()
    qtbot.waitUntil(lambda: w.server.state in (ServerState.READY, ServerState.FAILED), timeout=240_000)
    assert w.server.state is ServerState.READY, w.banner.text()
    reply = send_prompt(qtbot, w, "hello world", max_tokens=64)
    assert reply.speed.draft_n and reply.speed.draft_accepted > 0  # the server's own timings
    qtbot.waitUntil(lambda: w.live.positions.isVisibleTo(w.live), timeout=WAIT)
    assert w.live.positions.text().startswith("accepted by draft position: 1: ")
    w.stop_server()
    qtbot.waitUntil(lambda: w.server.state is ServerState.STOPPED, timeout=WAIT)
