"""The window's results can be acted on and its controls apply (issue 24): the Live panel for other programs'
requests, the chart, Tune's result with "Use this", the controls that apply to this model, binary and
machine, the command preview and the tooltips.

Each test drives the real window through visible controls and asserts what is on screen; the
integration tests run the real llama-server on the demo model.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

import pytest

from llama_launcher.core.server.activity import OTHERS, TRY_IT
from llama_launcher.core.server.speed_stats import parse_metrics
from llama_launcher.core.settings.launch import ModelSettings
from llama_launcher.core.speculative.methods import BY_ID, SpecMode
from llama_launcher.core.tuning import store as tuning_store
from llama_launcher.ui.main_window import MainWindow
from test_words_decisions import tuned_ngram_mod

from fake_server import make_fake_server
from gguf_factory import write_model
from window_helpers import WAIT, answer_next_dialog, flat, open_window, send_prompt, value_after, wait_ready


def outside_request(base_url: str, text: str, max_tokens: int) -> dict:
    """What curl or an editor plugin sends: a plain HTTP POST to the OpenAI endpoint, not through the app."""
    body = json.dumps({"messages": [{"role": "user", "content": text}], "max_tokens": max_tokens,
                       "temperature": 0}).encode()
    req = urllib.request.Request(base_url + "/v1/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:  # noqa: S310 - the test's own server on 127.0.0.1
        return json.loads(r.read())


def metrics(base_url: str) -> dict[str, float]:
    with urllib.request.urlopen(base_url + "/metrics", timeout=60) as r:  # noqa: S310 - the test's own server
        return parse_metrics(r.read().decode())


def in_background(fn, *args) -> dict:
    out: dict = {}

    def run() -> None:
        out["answer"] = fn(*args)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    out["thread"] = t
    return out


@pytest.mark.integration
def test_an_outside_clients_reply_shows_its_prompt_speed_and_one_bar(qtbot, llama_server: str,
                                                                     demo_model: Path) -> None:
    """Points 4 and 5, against the real llama-server: a curl-like request's prompt t/s reaches the Live panel
    (it showed "–"), the chart draws one bar and says "1 reply", and the table has its row."""
    w = open_window(qtbot, llama_server, demo_model.parent, models={str(demo_model): ModelSettings(threads=2)})
    w.launch()
    wait_ready(qtbot, w, timeout=240_000)
    live = w.live
    assert live.chart.caption() == "no replies yet" and live.prompt_stat.value.text() == "–"
    before = metrics(w.server.base_url)
    job = in_background(outside_request, w.server.base_url, "Write a short poem about the sea.", 300)
    qtbot.waitUntil(lambda: live.source.text().startswith("other clients: a reply on the way") or "answer" in job,
                    timeout=120_000)
    assert "answer" not in job, "the reply ended before a /metrics poll saw it on the way"  # 300 tokens take seconds
    qtbot.waitUntil(lambda: "answer" in job and any(r.source == OTHERS for r in live.activity.replies),
                    timeout=120_000)
    timings, after = job["answer"]["timings"], metrics(w.server.base_url)
    shown = float(live.prompt_stat.value.text().replace(",", ""))
    # the server's /metrics counters, not "–". They time the prompt's compute (decode start to sync), the
    # reply's timings from the slot's start: on a busy machine the two differ by half, so the panel is
    # checked against the counters it reads, and the tokens against the reply's own count
    counted = (after["llamacpp:prompt_tokens_total"] - before["llamacpp:prompt_tokens_total"])
    took = after["llamacpp:prompt_seconds_total"] - before["llamacpp:prompt_seconds_total"]
    assert counted == timings["prompt_n"] and shown == pytest.approx(counted / took, abs=0.06, rel=0.001)
    assert live.source.text() == "other clients · from /metrics"
    assert live.chart.bars()[-1][0] == OTHERS and len(live.chart.bars()) == 1
    assert live.chart.caption().startswith("1 reply, ")
    row = [live.table.topLevelItem(0).text(c) for c in range(5)]
    assert row[1] == OTHERS and row[2].startswith(f"{timings['prompt_n']:,} · ") and row[2].endswith(" t/s")
    assert row[3].startswith(f"{timings['predicted_n']:,} · ")
    # then Try it: a second bar (its own colour), and the caption counts two replies over the time between them
    send_prompt(qtbot, w, "The three primary colours are", max_tokens=32)
    assert [s for s, _ in live.chart.bars()] == [OTHERS, TRY_IT]
    assert live.chart.caption().startswith("the last 2 replies, over ")
    assert live.table.topLevelItem(0).text(1) == TRY_IT and "(streaming)" not in live.table.topLevelItem(0).text(3)
    assert "decode t/s" in live.reply_status.text()  # LM Studio's tok/s under the reply
    w.stop_server()
    qtbot.waitUntil(lambda: not w.server.running, timeout=WAIT)


def models_folder(tmp_path: Path) -> Path:

    folder = tmp_path / "models"
    write_model(folder / "alpha.gguf", arch="llama", name="Alpha")
    write_model(folder / "big-mtp.gguf", arch="qwen35", name="Big MTP", blocks=3, nextn=1)
    (folder / "broken.gguf").write_bytes(b"this is not a model, just text that ends with .gguf")
    return folder


def select(qtbot, w: MainWindow, path: Path) -> None:
    w.models_pane.select(str(path))
    qtbot.waitUntil(lambda: w.planner.model is not None and w.planner.model.path == str(path), timeout=WAIT)


def test_controls_that_do_not_apply_are_greyed_with_why(qtbot, tmp_path: Path, monkeypatch) -> None:
    """Point 8: ngram-mod Off greys its n-match/n-min/n-max; GPU layers is greyed on a machine without a GPU;
    a broken file shows no speculative controls at all."""

    folder = models_folder(tmp_path)
    w = open_window(qtbot, make_fake_server(tmp_path / "bin", "b11434-current"), folder)
    select(qtbot, w, folder / "alpha.gguf")
    adv, spec = w.launch_panel.advanced, w.launch_panel.speculative
    adv.toggle.click()  # open Advanced, as a user does
    ngram_mod = [adv.knobs[k] for k in BY_ID["ngram-mod"].knobs]
    assert all(s.isEnabled() for s in ngram_mod) and not adv.knobs_why.isVisible()
    simple = [adv.knobs[k] for k in BY_ID["ngram-simple"].knobs]  # a newer type: Auto waits for a measurement
    assert not any(s.isEnabled() for s in simple)
    adv.mode["ngram-simple"].setCurrentIndex(adv.mode["ngram-simple"].findData("on"))
    qtbot.waitUntil(lambda: all(s.isEnabled() for s in simple), timeout=WAIT)  # on: its knobs apply
    adv.mode["ngram-simple"].setCurrentIndex(adv.mode["ngram-simple"].findData("auto"))
    combo = spec.mode["ngram-mod"]
    combo.setCurrentIndex(combo.findData("off"))
    qtbot.waitUntil(lambda: not adv.knobs["ngram_n_max"].isEnabled(), timeout=WAIT)
    assert all(not s.isEnabled() for s in ngram_mod)
    assert adv.knobs_why.isVisible() and adv.knobs_why.text() == "ngram-mod is Off: set it to Auto or On to use these"
    combo.setCurrentIndex(combo.findData("auto"))
    qtbot.waitUntil(lambda: adv.knobs["ngram_n_max"].isEnabled(), timeout=WAIT)
    # this machine, as the fake llama-server reports it: no GPU devices
    assert not adv.gpu_layers.isEnabled() and adv.gpu_why.isVisible()
    assert adv.gpu_why.text().startswith("every layer runs on the CPU: llama-server reports no GPU")
    # a file that is not a model: no controls offered as if it were one
    select(qtbot, w, folder / "broken.gguf")
    panel = w.launch_panel
    qtbot.waitUntil(lambda: panel.unusable.isVisible(), timeout=WAIT)
    assert not spec.isVisible() and not adv.isVisible() and not panel.preview.isVisible()
    assert panel.unusable.text().startswith("There is nothing to set up for broken.gguf")
    assert w.model_note.text().startswith("This is not a GGUF model file")  # the reason, said once
    select(qtbot, w, folder / "alpha.gguf")
    qtbot.waitUntil(lambda: spec.isVisible() and not panel.unusable.isVisible(), timeout=WAIT)


def test_gpu_layers_apply_where_llama_server_sees_a_gpu(qtbot, tmp_path: Path, monkeypatch) -> None:

    monkeypatch.setenv("FAKE_DEVICES", "  CUDA0: NVIDIA GeForce RTX 4090 (24080 MiB, 23500 MiB free)")
    folder = models_folder(tmp_path)
    w = open_window(qtbot, make_fake_server(tmp_path / "bin", "b11434-current"), folder)
    select(qtbot, w, folder / "alpha.gguf")
    qtbot.waitUntil(lambda: w.llama.hw is not None and w.llama.hw.gpu_branch()[0], timeout=WAIT)
    w.launch_panel.advanced.toggle.click()
    assert w.launch_panel.advanced.gpu_layers.isEnabled() and not w.launch_panel.advanced.gpu_why.isVisible()


def test_the_draft_length_row_agrees_with_the_row_above_and_shows_its_number(qtbot, tmp_path: Path) -> None:
    """Point 7: with ngram-mod in effect the row says why the draft length does not apply (ngram-mod drafts by its
    own n-min/n-max) instead of "n/a (no drafter)"; with MTP on it says the length in effect, and the slider
    shows its number."""

    folder = models_folder(tmp_path)
    w = open_window(qtbot, make_fake_server(tmp_path / "bin", "b11434-current"), folder)
    select(qtbot, w, folder / "alpha.gguf")
    spec = w.launch_panel.speculative
    qtbot.waitUntil(lambda: spec.summary.text().startswith("ngram-mod"), timeout=WAIT)
    assert spec.draft_value.text().startswith("ngram-mod sets its own length (n-min to n-max, in Advanced)")
    assert "n/a" not in spec.draft_value.text() and not spec.draft.isEnabled()
    assert spec.draft_number.isVisible() and spec.draft_number.text() == str(spec.draft.value())
    select(qtbot, w, folder / "big-mtp.gguf")
    mtp = spec.mode["mtp"]
    mtp.setCurrentIndex(mtp.findData("on"))  # a small test model: Auto leaves MTP off, so the user turns it on
    qtbot.waitUntil(lambda: spec.draft.isEnabled(), timeout=WAIT)
    assert spec.draft_value.text() == "MTP proposes 3 tokens a step" and spec.draft_number.text() == "3"
    spec.draft.setValue(5)  # the user's own length: the number, the row and the preview follow
    qtbot.waitUntil(lambda: spec.draft_value.text() == "MTP proposes 5 tokens a step", timeout=WAIT)
    assert spec.draft_number.text() == "5" and not spec.draft_default.isChecked()

    assert value_after(flat(w), "--spec-draft-n-max") == "5"


def test_tunes_result_says_each_workload_and_use_this_puts_it_in_effect(qtbot, tmp_path: Path) -> None:
    """Point 6: a stored result (ngram-mod: code 5×, prose the same) with ngram-mod set Off by hand: the box names
    each workload's ratio and what stands in the way; "Use this" sets the modes, and "In effect" follows."""
    folder = models_folder(tmp_path)
    alpha = folder / "alpha.gguf"
    tuning_store.save(str(alpha), 11434, tuned_ngram_mod())
    w = open_window(qtbot, make_fake_server(tmp_path / "bin", "b11434-current"), folder,
                    models={str(alpha): ModelSettings(modes={"ngram-mod": SpecMode.OFF})})
    select(qtbot, w, alpha)
    box, spec = w.launch_panel.tune, w.launch_panel.speculative
    qtbot.waitUntil(lambda: "Fastest on this machine: ngram-mod" in box.label.text(), timeout=WAIT)
    assert spec.summary.text() == "off"  # the hand-set Off wins: the measurement is not in effect ...
    assert box.label.text().splitlines()[1:] == ["Code: 26.9 t/s against 5.3 off — 5.08× as fast",
                                                 "Prose: 5.4 t/s against 5.2 off — 1.04× as fast"]
    assert box.adopt_label.text().startswith("Not in effect: your own settings win over it (ngram-mod: Off → Auto)")
    assert box.use_btn.isVisible()  # ... and the box says so, with the way to use it
    first = box.table.topLevelItem(0)
    assert first.text(0) == "off" and "read from the ngram-mod run's steps" in first.toolTip(0)
    fm = box.table.fontMetrics()
    for i in range(box.table.topLevelItemCount()):  # no cell is cut ("off (from the …")
        for col in range(box.table.columnCount()):
            assert fm.horizontalAdvance(box.table.topLevelItem(i).text(col)) <= box.table.columnWidth(col)
    box.use_btn.click()
    qtbot.waitUntil(lambda: spec.summary.text().startswith("ngram-mod"), timeout=WAIT)
    assert "measured" in spec.summary.text() and spec.mode["ngram-mod"].currentData() == "auto"
    assert not box.use_btn.isVisible() and box.adopt_label.text().startswith("In effect")

    assert value_after(flat(w), "--spec-type") == "ngram-mod"
    assert w.settings_ctl.settings.model(str(alpha)).modes == {}  # kept for this model


def tuned_many_rows():
    """A stored tune result as tune() makes it on b11434 with an MTP model: off (from ngram-mod's steps),
    ngram-mod, the newer types' chain and its leader, MTP's ladder chained with the leader."""
    from llama_launcher.core.tuning.tune import TuneCandidate, TuneRow, _finish

    newer = ("ngram-simple", "ngram-map-k", "ngram-map-k4v", "ngram-cache")
    off = TuneRow(TuneCandidate(()), {"code": 74.0, "prose": 74.0}, 0, 0, 192, noise=0.01, derived_from="ngram-mod")
    rows = [off, TuneRow(TuneCandidate(("ngram-mod",)), {"code": 125.7, "prose": 80.2}, 1234, 1001, 192),
            TuneRow(TuneCandidate(newer), {"code": 146.6, "prose": 150.1}, 12345, 11002, 192),
            TuneRow(TuneCandidate(("ngram-simple",)), {"code": 140.8, "prose": 141.9}, 10000, 9000, 192)]
    rows += [TuneRow(TuneCandidate(("mtp", "ngram-simple"), n), {"code": 150.0 + n, "prose": 149.0 + n}, 20000, 15000, 192)
             for n in (2, 3, 4)]
    return _finish(rows, 0.01, 6, 0.0).choice


def test_tunes_result_table_shows_every_column_and_row_at_the_default_size(qtbot, tmp_path: Path) -> None:
    """The walk at 1280×820: the table showed three rows and a half, and only the code column; prose hid
    behind a horizontal scrollbar. Every column and every row is in view now; a long setting elides, its
    tooltip whole."""
    folder = models_folder(tmp_path)
    alpha = folder / "alpha.gguf"
    choice = tuned_many_rows()
    tuning_store.save(str(alpha), 11434, choice)
    w = open_window(qtbot, make_fake_server(tmp_path / "bin", "b11434-current"), folder)
    w.resize(1280, 820)
    select(qtbot, w, alpha)
    box = w.launch_panel.tune
    table = box.table
    qtbot.waitUntil(lambda: table.isVisible() and table.topLevelItemCount() == len(choice.table), timeout=WAIT)
    qtbot.wait(50)  # the layout settles at the window's size
    view = table.viewport().rect()
    assert table.horizontalScrollBar().maximum() == 0 and not table.horizontalScrollBar().isVisible()
    header = table.header()
    for col in range(table.columnCount()):
        left = header.sectionViewportPosition(col)
        assert 0 <= left and left + header.sectionSize(col) <= view.width(), (col, left, header.sectionSize(col), view)
        assert header.sectionSize(col) >= table.fontMetrics().horizontalAdvance(table.headerItem().text(col))
    fm = table.fontMetrics()
    for i in range(table.topLevelItemCount()):
        item = table.topLevelItem(i)
        rect = table.visualItemRect(item)
        assert view.contains(rect), (i, rect, view)  # the whole row, not cut in half
        for col in range(1, table.columnCount()):  # the numbers are never cut
            assert fm.horizontalAdvance(item.text(col)) <= table.columnWidth(col), (i, col, item.text(col))
        assert item.text(0) in item.toolTip(0)  # an elided setting is whole in its tooltip
    assert table.topLevelItem(2).text(0) == "ngram-simple + ngram-map-k + ngram-map-k4v + ngram-cache"
    assert "(" in table.topLevelItem(2).text(2)  # prose's ratio to off is there too


def test_tune_asks_first_and_says_about_how_long(qtbot, tmp_path: Path) -> None:
    """Point 6: Tune does not start on a click alone: it says what it measures and about how long, and Cancel
    leaves everything as it was."""

    folder = models_folder(tmp_path)
    w = open_window(qtbot, make_fake_server(tmp_path / "bin", "b11434-current"), folder)
    select(qtbot, w, folder / "alpha.gguf")
    said = answer_next_dialog("Cancel")
    w.launch_panel.tune.button.click()
    assert said and said[0].startswith("Tune measures, each on a code and a prose prompt")
    assert "\n• ngram-mod, and off (no speculation) to compare with" in said[0]  # every stage tune runs (core: tune_plan)
    assert " about " in said[0] and "a rough guess from the model's size" in said[0]
    assert not w.tuner.running and not w.launch_panel.tune.bar.isVisible()


def test_tune_reads_the_speed_live_measured_for_this_model_after_its_server_stopped(qtbot, tmp_path: Path) -> None:
    """The walk: Live showed 77.8 t/s from an outside client, the server was stopped, and Tune's question still
    guessed from the file's size. The last launch's replies are this model's speed (core: known_decode_speed)."""
    import types

    from llama_launcher.core.server.activity import OTHERS
    from llama_launcher.core.server.speed_stats import Speed

    folder = models_folder(tmp_path)
    w = open_window(qtbot, make_fake_server(tmp_path / "bin", "b11434-current"), folder)
    select(qtbot, w, folder / "alpha.gguf")
    assert w.planner.model is not None and w.server.launch_info is None  # not running
    w.server.last_launch = types.SimpleNamespace(model=w.planner.model)  # type: ignore[assignment]
    w.live.activity.add(OTHERS, Speed(decode_tps=77.8, predicted_n=100))
    said = answer_next_dialog("Cancel")
    w.launch_panel.tune.button.click()
    assert said and "a rough figure from the 77.8 t/s this model decoded at in its last launch (1 reply in Live)" in said[0]
    assert "guess" not in said[0]


@pytest.mark.parametrize("size", [(1280, 820), (1024, 640)])
def test_the_command_preview_is_in_view_and_shows_whole_flags(qtbot, tmp_path: Path, size: tuple[int, int]) -> None:
    """Point 9: the preview is not at the end of a page to scroll; a long flag (the model's path) is shown whole,
    wrapped, and its tooltip holds the flag and its reason."""
    folder = tmp_path / "deeply" / "nested" / "folder" / "of" / "models"
    model = write_model(folder / "gemma-3-270m-it-qat-q4_0-unquantized-with-a-long-name.gguf", arch="llama", name="L")
    w = open_window(qtbot, make_fake_server(tmp_path / "bin", "b11434-current"), folder)
    w.resize(*size)
    qtbot.waitUntil(lambda: w.launch_panel.preview.tree.topLevelItemCount() > 0, timeout=WAIT)
    preview = w.launch_panel.preview
    qtbot.waitUntil(lambda: preview.tree.height() >= 90, timeout=WAIT)
    scroll = w.launch_panel.findChild(type(w.launch_panel.split.widget(0)))
    assert not scroll.isAncestorOf(preview)  # beside the scrolled settings, not inside them
    top_left = preview.mapTo(w, preview.rect().topLeft())
    bottom = preview.mapTo(w, preview.rect().bottomLeft())
    assert 0 <= top_left.y() and bottom.y() <= w.height()  # all of it inside the window, no scrolling
    tree = preview.tree
    item = next(tree.topLevelItem(i) for i in range(tree.topLevelItemCount()) if tree.topLevelItem(i).text(0).startswith("-m "))
    assert item.text(0) == f"-m {model}" and str(model) in item.toolTip(0) and "the model you selected" in item.toolTip(0)
    tree.scrollToItem(item)
    from PySide6.QtCore import QRect, Qt

    needed = tree.fontMetrics().boundingRect(QRect(0, 0, tree.columnWidth(0) - 10, 1 << 20), Qt.TextFlag.TextWordWrap,
                                             item.text(0)).height()
    assert tree.visualItemRect(item).height() >= needed  # tall enough for every wrapped line: nothing elided


def test_long_tooltips_wrap_within_the_window(qtbot, tmp_path: Path) -> None:
    """Point 10: a long explanation shows as a paragraph of bounded width that starts inside the window, for a
    widget's own tooltip and for an item's."""
    from PySide6.QtCore import QEvent, QPoint
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QApplication

    from llama_launcher.ui.tooltips import MAX_WIDTH, tip_widget

    folder = models_folder(tmp_path)
    w = open_window(qtbot, make_fake_server(tmp_path / "bin", "b11434-current"), folder)
    select(qtbot, w, folder / "alpha.gguf")
    combo = w.launch_panel.speculative.mode["ngram-mod"]
    assert combo.fontMetrics().horizontalAdvance(combo.toolTip()) > 2 * MAX_WIDTH  # a long one

    def hover(widget, pos: QPoint) -> None:
        QApplication.sendEvent(widget, QHelpEvent(QEvent.Type.ToolTip, pos, widget.mapToGlobal(pos)))
        qtbot.waitUntil(lambda: tip_widget() is not None, timeout=WAIT)

    hover(combo, QPoint(combo.width() - 5, 5))
    tip = tip_widget()
    assert tip is not None and tip.width() <= MAX_WIDTH + 40 and tip.height() > 2 * tip.fontMetrics().height()
    frame = w.frameGeometry()
    assert frame.left() <= tip.geometry().left() and tip.geometry().right() <= max(frame.right(), tip.width())
    tree = w.launch_panel.preview.tree
    item = tree.topLevelItem(0)
    hover(tree.viewport(), tree.visualItemRect(item).center())
    tip = tip_widget()
    assert tip is not None and tip.width() <= MAX_WIDTH + 40
