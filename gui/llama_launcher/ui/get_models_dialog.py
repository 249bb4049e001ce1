"""The "Get models…" dialog: search the Hugging Face Hub, see which quant fits this machine, download it
with its parts, MTP head and projector, cancel and resume.

Self-contained: one worker object (``HubWorker``) moved to its own QThread runs core.hub (search, the
remote header reads and verdicts, the download); the dialog only shows what it reports and forwards
clicks. Cancel sets the worker's threading.Event straight from the GUI thread (a queued call would
wait behind the download it is meant to stop). The window hears ``model_ready`` with the path to select.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.hub.client import HubClient, HubError, token_source
from llama_launcher.core.hub.download import (
    DownloadCancelled,
    DownloadError,
    Progress,
    Transfer,
    plan_items,
    size_text,
)
from llama_launcher.core.hub.fit import PLACE_WORDS
from llama_launcher.core.hub.repo_report import RepoReport, files_for, judge_repo
from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.ui.workers import start_in_thread, stop_thread

CACHE_CHOICE = "Hugging Face cache (shared with other tools)"
CHOOSE = "\0choose"  # the destination item that asks for a folder


class HubWorker(QObject):
    """Runs core.hub off the GUI thread; every answer is a signal."""

    searched = Signal(object, str)  # list[RepoHit], error
    judged = Signal(object, str)  # RepoReport or None, error
    progress = Signal(object)  # Progress
    note = Signal(str)
    finished = Signal(object, str, bool)  # placed paths, error, cancelled

    def __init__(self, client: HubClient) -> None:
        super().__init__()
        self.client = client
        self._cancel = threading.Event()

    def arm(self) -> None:
        """Called from the GUI thread just before a download is queued: a cancel after this counts."""
        self._cancel.clear()

    def cancel(self) -> None:
        self._cancel.set()

    @Slot(str)
    def search(self, query: str) -> None:
        try:
            self.searched.emit(self.client.search(query), "")
        except HubError as exc:
            self.searched.emit([], str(exc))

    @Slot(str, object, object, object)
    def judge(self, repo_id: str, hw: Hardware, caps: Capabilities | None, ctx: int | None) -> None:
        try:
            self.judged.emit(judge_repo(self.client, repo_id, hw, caps, ctx), "")
        except HubError as exc:
            self.judged.emit(None, str(exc))
        except Exception as exc:  # noqa: BLE001 - one line in the dialog, never a dead worker
            self.judged.emit(None, f"{repo_id} could not be judged: {exc}")

    @Slot(object, str, bool, bool, str)
    def download(self, report: RepoReport, quant: str, mtp_head: bool, projector: bool, folder: str) -> None:
        try:
            files = files_for(report, quant, mtp_head, projector)
            items = plan_items(report.listing.repo_id, files, None if folder else self.client.cache_dir,
                               Path(folder) if folder else None)
            t = Transfer(self.client, report.listing.repo_id, report.listing.commit, items,
                         self.progress.emit, self._cancel, note=self.note.emit)
            self.finished.emit([str(p) for p in t.run()], "", False)
        except DownloadCancelled as exc:
            self.finished.emit([], str(exc), True)
        except (DownloadError, HubError) as exc:
            self.finished.emit([], str(exc), False)
        except Exception as exc:  # noqa: BLE001
            self.finished.emit([], f"the download failed: {exc}", False)


def _item(text: str, data: Any = None, align_right: bool = False) -> QTableWidgetItem:
    it = QTableWidgetItem(text)
    it.setFlags(it.flags() & ~Qt.ItemFlag.ItemIsEditable)
    if data is not None:
        it.setData(Qt.ItemDataRole.UserRole, data)
    if align_right:
        it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return it


def _table(headers: list[str], stretch: int = 0) -> QTableWidget:
    """A read-only table; column ``stretch`` takes the room left, the others fit their contents."""
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.setWordWrap(False)
    t.verticalHeader().setVisible(False)
    for i in range(len(headers)):
        t.horizontalHeader().setSectionResizeMode(i, QHeaderView.ResizeMode.Stretch if i == stretch
                                                  else QHeaderView.ResizeMode.ResizeToContents)
    return t


class GetModelsDialog(QDialog):
    request_search = Signal(str)
    request_judge = Signal(str, object, object, object)
    request_download = Signal(object, str, bool, bool, str)
    model_ready = Signal(str, str)  # the path to select, the models folder it went into ("" for the cache)

    def __init__(self, hw: Hardware, caps: Capabilities | None, folders: list[str], parent: QWidget | None = None,
                 client: HubClient | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Get models from Hugging Face")
        self.hw, self.caps = hw, caps
        self.report: RepoReport | None = None
        self._judged_ctx = 0
        self.busy = False
        # a request that hangs gives up (10 s without a byte) before quitting stops waiting for the thread (15 s)
        self.worker = HubWorker(client or HubClient(timeout=10.0))
        self._thread: QThread = start_in_thread(self.worker, "hub-worker")
        self._build(folders)
        self.request_search.connect(self.worker.search)
        self.request_judge.connect(self.worker.judge)
        self.request_download.connect(self.worker.download)
        self.worker.searched.connect(self._searched)
        self.worker.judged.connect(self._judged)
        self.worker.progress.connect(self._progress)
        self.worker.note.connect(self.status.setText)
        self.worker.finished.connect(self._finished)

    def _build(self, folders: list[str]) -> None:
        self.query = QLineEdit()
        self.query.setPlaceholderText("Search GGUF models on Hugging Face (e.g. qwen3 8b)")
        self.query.setAccessibleName("Search Hugging Face")
        self.search_btn = QPushButton("Search")
        self.results = _table(["Repository", "Downloads", "Likes", "Updated", "Access"])
        self.quants = _table(["Quant", "Size", "Fit here", "Context", "Memory", "Speculative decoding"], stretch=5)
        self.ctx = QSpinBox()
        self.ctx.setRange(0, 1 << 20)
        self.ctx.setSingleStep(4096)
        self.ctx.setSpecialValueText("Auto")  # 0: the context Auto would plan for each quant
        self.ctx.setToolTip("The context the verdicts are for; Auto: the largest that fits, as a launch plans it")
        self.why = QLabel("")
        self.why.setWordWrap(True)
        self.mtp_box = QCheckBox("Bring the MTP head (mtp-*.gguf) for faster decoding")
        self.mtp_box.setChecked(True)
        self.mmproj_box = QCheckBox("Bring the vision projector (mmproj) so the model can see images")
        self.mmproj_box.setChecked(True)
        self.dest = QComboBox()
        self.dest.addItem(CACHE_CHOICE, "")
        for f in folders:
            self.dest.addItem(f"Models folder: {f}", f)
        self.dest.addItem("Another folder…", CHOOSE)
        self.download_btn = QPushButton("Download")
        self.cancel_btn = QPushButton("Cancel")
        self.close_btn = QPushButton("Close")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.login = QLabel(f"Hugging Face login: {token_source()}")
        self.login.setObjectName("muted")
        self.login.setWordWrap(True)
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(self.query, 1)
        row.addWidget(self.search_btn)
        lay.addLayout(row)
        lay.addWidget(self.results, 1)
        ctx_row = QHBoxLayout()
        ctx_row.addWidget(QLabel("Judge the fit at a context of"))
        ctx_row.addWidget(self.ctx)
        ctx_row.addWidget(QLabel("tokens"))
        ctx_row.addStretch(1)
        lay.addLayout(ctx_row)
        lay.addWidget(self.quants, 1)
        lay.addWidget(self.why)
        lay.addWidget(self.mtp_box)
        lay.addWidget(self.mmproj_box)
        lay.addWidget(self.dest)
        buttons = QHBoxLayout()
        for b in (self.download_btn, self.cancel_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.close_btn)
        lay.addLayout(buttons)
        lay.addWidget(self.bar)
        lay.addWidget(self.status)
        lay.addWidget(self.login)
        self.resize(900, 640)
        self._idle()
        self.search_btn.clicked.connect(self.search)
        self.query.returnPressed.connect(self.search)
        self.results.itemSelectionChanged.connect(self._repo_chosen)
        self.ctx.editingFinished.connect(self._ctx_changed)
        self.dest.activated.connect(self._dest_chosen)
        self.quants.itemSelectionChanged.connect(self._quant_chosen)
        self.download_btn.clicked.connect(self.download)
        self.cancel_btn.clicked.connect(self.cancel)
        self.close_btn.clicked.connect(self.close)

    # --- intent --------------------------------------------------------------------------------
    def search(self) -> None:
        text = self.query.text().strip()
        if not text or self.busy:
            return
        self.status.setText(f"searching for {text!r}…")
        self.search_btn.setEnabled(False)
        self.request_search.emit(text)

    def _repo_chosen(self) -> None:
        rows = self.results.selectionModel().selectedRows()
        if not rows or self.busy:
            return
        cell = self.results.item(rows[0].row(), 0)
        if cell is None:
            return
        repo_id = cell.text()
        self.report = None
        self.quants.setRowCount(0)
        self.why.setText("")
        self.status.setText(f"reading the headers of {repo_id}'s quants (a few MB, never whole files)…")
        self.download_btn.setEnabled(False)
        self._judged_ctx = self.ctx.value()
        self.request_judge.emit(repo_id, self.hw, self.caps, self._judged_ctx or None)

    def _ctx_changed(self) -> None:
        if self.ctx.value() != self._judged_ctx:  # editingFinished also fires when the box loses focus
            self._repo_chosen()

    def _dest_chosen(self, index: int) -> None:
        if self.dest.itemData(index) != CHOOSE:
            return
        folder = QFileDialog.getExistingDirectory(self, "Download models into", str(Path.home()))
        if not folder:
            self.dest.setCurrentIndex(0)
            return
        self.dest.insertItem(index, f"Models folder: {folder}", folder)
        self.dest.setCurrentIndex(index)

    def _quant_chosen(self) -> None:
        self.download_btn.setEnabled(self.report is not None and self.selected_quant() is not None and not self.busy)

    def selected_quant(self) -> str | None:
        rows = self.quants.selectionModel().selectedRows()
        cell = self.quants.item(rows[0].row(), 0) if rows else None
        return cell.data(Qt.ItemDataRole.UserRole) if cell is not None else None

    def download(self) -> None:
        quant = self.selected_quant()
        if self.report is None or quant is None or self.busy:
            return
        self.busy = True
        self.download_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.bar.setValue(0)
        self.status.setText(f"downloading {quant}…")
        self.worker.arm()
        self.request_download.emit(self.report, quant, self.mtp_box.isChecked() and self.mtp_box.isEnabled(),
                                   self.mmproj_box.isChecked() and self.mmproj_box.isEnabled(), self._folder())

    def _folder(self) -> str:
        """The models folder chosen, or "" for the Hugging Face cache."""
        data = self.dest.currentData() or ""
        return "" if data == CHOOSE else data

    def cancel(self) -> None:
        self.worker.cancel()  # a threading.Event: the download loop sees it within one chunk
        self.cancel_btn.setEnabled(False)
        self.status.setText("cancelling…")

    # --- what the worker says ------------------------------------------------------------------
    def _searched(self, hits: list, error: str) -> None:
        self.search_btn.setEnabled(True)
        self.results.setRowCount(0)
        if error:
            self.status.setText(error)
            return
        self.status.setText(f"{len(hits)} GGUF repositories; choose one to see which quant fits this machine"
                            if hits else "no GGUF repositories match")
        for h in hits:
            r = self.results.rowCount()
            self.results.insertRow(r)
            self.results.setItem(r, 0, _item(h.repo_id, h.repo_id))
            self.results.setItem(r, 1, _item(f"{h.downloads:,}", align_right=True))
            self.results.setItem(r, 2, _item(f"{h.likes:,}", align_right=True))
            self.results.setItem(r, 3, _item(h.updated or "-"))
            self.results.setItem(r, 4, _item(f"gated ({h.gated}): log in first" if h.gated else "open"))

    def _judged(self, report: RepoReport | None, error: str) -> None:
        if report is None:
            self.status.setText(error)
            return
        self.report = report
        self.quants.setRowCount(0)
        for q in report.quants:
            r = self.quants.rowCount()
            self.quants.insertRow(r)
            star = "★ " if q.group.quant == report.recommended else ""
            v = q.verdict
            self.quants.setItem(r, 0, _item(star + q.group.quant + (f" ({len(q.group.files)} parts)"
                                                                   if len(q.group.files) > 1 else ""), q.group.quant))
            self.quants.setItem(r, 1, _item(size_text(q.group.size), align_right=True))
            fit = _item(PLACE_WORDS[v.place])
            fit.setToolTip("\n".join([v.reason, *v.notes]))
            self.quants.setItem(r, 2, fit)
            self.quants.setItem(r, 3, _item(f"{v.context:,}" if v.context else "-", align_right=True))
            self.quants.setItem(r, 4, _item(f"{v.needed_mib:,} MiB" if v.needed_mib else "-", align_right=True))
            spec = _item(v.speculative)
            spec.setToolTip(v.speculative)
            self.quants.setItem(r, 5, spec)
        heads, projs = report.models.mtp_heads, report.models.projectors
        self.mtp_box.setEnabled(bool(heads))
        self.mtp_box.setText(f"Bring the MTP head ({heads[0].name}) for faster decoding" if heads
                             else "No MTP head in this repository")
        self.mmproj_box.setEnabled(bool(projs))
        self.mmproj_box.setText(f"Bring the vision projector ({projs[0].name}) so the model can see images" if projs
                                else "No vision projector in this repository")
        self.why.setText(("Recommended: " if report.recommended else "") + report.why)
        self.status.setText(f"{report.listing.repo_id}: {len(report.quants)} quants judged from "
                            f"{size_text(report.bytes_read)} of headers")
        names = [q.group.quant for q in report.quants]
        if report.recommended in names:
            self.quants.selectRow(names.index(report.recommended))

    def _progress(self, p: Progress) -> None:
        self.bar.setValue(int(p.fraction * 1000))
        self.status.setText(p.text())

    def _finished(self, paths: list, error: str, cancelled: bool) -> None:
        self.busy = False
        self._idle()
        if paths:
            self.bar.setValue(1000)
            self.status.setText(f"ready: {paths[0]} — selected in the window")
            self.model_ready.emit(paths[0], self._folder())
            return
        self.status.setText(error)
        if cancelled:
            self.download_btn.setText("Resume")

    def _idle(self) -> None:
        self.cancel_btn.setEnabled(False)
        self.download_btn.setEnabled(self.report is not None and self.selected_quant() is not None)
        if self.download_btn.text() == "Resume" and not self.busy:
            self.download_btn.setText("Download")

    # --- closing -------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Cancel a download (what arrived is kept for a resume) and end the worker's thread."""
        self.worker.cancel()
        stop_thread(self._thread, self.worker)

    def closeEvent(self, event) -> None:
        if not self.busy:
            super().closeEvent(event)
            return
        self.cancel()  # closing stops the download; opening the dialog again resumes it
        super().closeEvent(event)
