"""The "Get models…" dialog driven through its visible controls in the real window: search, choose a
repository, see the verdicts with the recommended quant chosen, download, cancel at 40%, resume (only
the rest is fetched, counted at the fake Hub), and the model appears in the window's list, selected."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from gguf_factory import write_model
from window_helpers import WAIT, open_window

TINY = "tiny/Tiny-GGUF"


def click_cell(qtbot, table, row: int, col: int = 0) -> None:
    rect = table.visualItemRect(table.item(row, col))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_search_choose_download_cancel_resume_and_the_model_is_selected(qtbot, fake_hub, llama_server,
                                                                        tmp_path: Path) -> None:
    folder = tmp_path / "models"
    write_model(folder / "already-here.gguf")
    w = open_window(qtbot, llama_server, folder)
    qtbot.mouseClick(w.models_pane.get_btn, Qt.MouseButton.LeftButton)
    dlg = w.models_flow.get_models
    assert dlg is not None and dlg.isVisible()
    assert dlg.login.text().startswith("Hugging Face login: none: not logged in")

    qtbot.keyClicks(dlg.query, "tiny")
    qtbot.mouseClick(dlg.search_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.results.rowCount() == 1, timeout=WAIT)
    assert dlg.results.item(0, 0).text() == TINY and dlg.results.item(0, 1).text() == "5,000"

    click_cell(qtbot, dlg.results, 0)
    qtbot.waitUntil(lambda: dlg.quants.rowCount() == 4, timeout=WAIT)
    texts = [dlg.quants.item(r, 0).text() for r in range(4)]
    assert texts[1] == "Q6_K (2 parts)"
    recommended = [t for t in texts if t.startswith("★ ")]
    assert len(recommended) == 1 and dlg.why.text().startswith("Recommended: ")
    chosen = dlg.selected_quant()
    assert recommended[0] == f"★ {chosen}"  # the recommended quant is the one chosen
    assert dlg.mtp_box.isChecked() and dlg.mtp_box.isEnabled() and "mtp-tiny-Q8_0.gguf" in dlg.mtp_box.text()
    assert dlg.mmproj_box.isEnabled() and "mmproj-tiny-F16.gguf" in dlg.mmproj_box.text()

    qtbot.mouseDClick(dlg.ctx.lineEdit(), Qt.MouseButton.LeftButton)
    dlg.ctx.lineEdit().selectAll()
    qtbot.keyClicks(dlg.ctx.lineEdit(), "8192")
    qtbot.keyClick(dlg.ctx.lineEdit(), Qt.Key.Key_Return)  # the verdicts again, at the context asked for
    qtbot.waitUntil(lambda: dlg.quants.rowCount() == 4 and dlg.quants.item(0, 3).text() == "8,192", timeout=WAIT)
    assert all(dlg.quants.item(r, 3).text() == "8,192" for r in range(4))
    click_cell(qtbot, dlg.quants, texts.index("Q8_0"))
    assert dlg.selected_quant() == "Q8_0"
    main = fake_hub.repos[TINY].files["tiny-Q8_0.gguf"]
    at = int(main.size * 0.4)
    fake_hub.behaviour.pause_at[main.sha256] = at
    partial = Path(fake_hub.cache_dir) / "models--tiny--Tiny-GGUF" / "blobs" / f"{main.sha256}.tiny-Q8_0.gguf.llpartial"
    qtbot.mouseClick(dlg.download_btn, Qt.MouseButton.LeftButton)
    assert fake_hub.paused.wait(60)
    qtbot.waitUntil(lambda: partial.exists() and partial.stat().st_size == at and dlg.bar.value() >= 100,
                    timeout=WAIT)
    assert "left" in dlg.status.text() and "/s" in dlg.status.text()  # speed and time left
    qtbot.mouseClick(dlg.cancel_btn, Qt.MouseButton.LeftButton)
    fake_hub.release.set()
    qtbot.waitUntil(lambda: dlg.download_btn.text() == "Resume", timeout=WAIT)
    assert dlg.status.text().startswith("cancelled:") and partial.stat().st_size == at
    assert w.models_pane.current() is not None and w.models_pane.current().file_name == "already-here.gguf"

    fake_hub.reset_counts()
    qtbot.mouseClick(dlg.download_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.status.text().startswith("ready:"), timeout=WAIT)
    download = [(start, sent) for sha, start, sent in fake_hub.transfers if sha == main.sha256]
    assert download == [(at, main.size - at)]  # resumed where it stopped; nothing fetched twice
    qtbot.waitUntil(lambda: w.models_pane.current() is not None
                    and w.models_pane.current().file_name == "tiny-Q8_0.gguf", timeout=WAIT)
    selected = w.models_pane.current()
    assert "snapshots" in selected.path and Path(selected.path).read_bytes() == main.head
    assert w.planner.model is not None and w.planner.model.path == selected.path  # the window's model: ready to launch
    qtbot.waitUntil(lambda: w.planner.plan is not None and selected.path in w.planner.plan.argv, timeout=WAIT)
    assert not partial.exists()


def test_offline_search_is_one_line_in_the_dialog(qtbot, fake_hub, llama_server, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    write_model(folder / "already-here.gguf")
    w = open_window(qtbot, llama_server, folder)
    qtbot.mouseClick(w.models_pane.get_btn, Qt.MouseButton.LeftButton)
    dlg = w.models_flow.get_models
    fake_hub.stop()
    qtbot.keyClicks(dlg.query, "qwen")
    qtbot.keyClick(dlg.query, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "cannot reach" in dlg.status.text(), timeout=WAIT)
    assert dlg.search_btn.isEnabled() and "\n" not in dlg.status.text()
    assert w.models_pane.current() is not None  # the rest of the window is as it was


def test_quitting_during_a_download_ends_its_thread_and_keeps_the_part(qtbot, fake_hub, llama_server,
                                                                         tmp_path: Path) -> None:
    folder = tmp_path / "models"
    write_model(folder / "already-here.gguf")
    w = open_window(qtbot, llama_server, folder)
    qtbot.mouseClick(w.models_pane.get_btn, Qt.MouseButton.LeftButton)
    dlg = w.models_flow.get_models
    qtbot.keyClicks(dlg.query, "tiny")
    qtbot.mouseClick(dlg.search_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.results.rowCount() == 1, timeout=WAIT)
    click_cell(qtbot, dlg.results, 0)
    qtbot.waitUntil(lambda: dlg.quants.rowCount() == 4 and dlg.download_btn.isEnabled(), timeout=WAIT)
    quant = dlg.selected_quant()
    report = dlg.report
    main = next(q for q in report.quants if q.group.quant == quant).group.first
    fake_hub.behaviour.pause_at[main.sha256] = main.size // 2  # the server then sends nothing at all
    qtbot.mouseClick(dlg.download_btn, Qt.MouseButton.LeftButton)
    assert fake_hub.paused.wait(60)
    partial = Path(fake_hub.cache_dir) / "models--tiny--Tiny-GGUF" / "blobs" / f"{main.sha256}.{main.name}.llpartial"
    qtbot.waitUntil(lambda: partial.exists() and partial.stat().st_size == main.size // 2, timeout=WAIT)
    w.shutdown()  # what quitting the app runs
    assert dlg.jobs._thread.isFinished() and not dlg.jobs.busy  # ended although the server sent nothing more
    fake_hub.release.set()
    assert partial.stat().st_size == main.size // 2
    assert not list(Path(fake_hub.cache_dir).rglob("*.gguf"))  # nothing that looks like a model
