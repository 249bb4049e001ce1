"""The "Get models…" dialog: search the Hugging Face Hub, see which quant fits this machine, download it
with its parts, MTP head and projector, cancel and resume.

Self-contained: one :class:`~llama_launcher.ui.jobs.JobRunner` (a worker object on its own QThread)
runs core.hub (search, the remote header reads and verdicts, the download); the dialog only shows what
it reports and forwards clicks. Cancel sets the job's CancelToken straight from the GUI thread (a queued
call would wait behind the download it is meant to stop). The window hears ``model_ready`` with the
path to select.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
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
from llama_launcher.core.hub.client import HubClient, RepoHit, token_source
from llama_launcher.core.hub.download import (
    Progress,
    Transfer,
    plan_items,
    size_text,
)
from llama_launcher.core.hub.fit import PLACE_WORDS
from llama_launcher.core.hub.repo_report import RepoReport, files_for, judge_repo
from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.ui.jobs import JobContext, JobRunner

CACHE_CHOICE = "Hugging Face cache (shared with other tools)"
CHOOSE = "\0choose"  # the destination item that asks for a folder


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
    model_ready = Signal(str, str)  # the path to select, the models folder it went into ("" for the cache)

    def __init__(self, hw: Hardware, caps: Capabilities | None, folders: list[str], parent: QWidget | None = None,
                 client: HubClient | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Get models from Hugging Face")
        self.hw, self.caps = hw, caps
        # a request that hangs gives up (10 s without a byte) before quitting stops waiting for the thread (15 s)
        self.client = client or HubClient(timeout=10.0)
        self.report: RepoReport | None = None
        self.busy = False
        self._judged_ctx = 0
        self._wanted_repo = ""
        self._download_run: int | None = None
        self._last: Progress | None = None
        self.jobs = JobRunner("hub-worker", "the Hugging Face request", self)
        self._runs: dict[int, tuple[Callable[[Any], None], Callable[[str], None]]] = {}  # run -> done, failed
        self._build(folders)
        self.jobs.progress.connect(self._progress)
        self.jobs.finished.connect(lambda run, result: self._end(run, 0, result))
        self.jobs.failed.connect(lambda run, why: self._end(run, 1, why))
        self.jobs.cancelled.connect(self._cancelled)

    def _submit(self, work: Callable[[JobContext], Any], done: Callable[[Any], None],
                failed: Callable[[str], None]) -> int:
        run = self.jobs.submit(work)
        self._runs[run] = (done, failed)
        return run

    def _end(self, run: int, which: int, value: Any) -> None:
        calls = self._runs.pop(run, None)
        if calls is not None:
            calls[which](value)

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
        client = self.client
        self._submit(lambda _ctx: client.search(text), self._searched, self._search_failed)

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
        self._judged_ctx, self._wanted_repo = self.ctx.value(), repo_id
        client, hw, caps, ctx = self.client, self.hw, self.caps, self._judged_ctx or None
        self._submit(lambda _ctx: judge_repo(client, repo_id, hw, caps, ctx), self._judged, self._judge_failed)

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
        report, client, folder = self.report, self.client, self._folder()
        mtp = self.mtp_box.isChecked() and self.mtp_box.isEnabled()
        proj = self.mmproj_box.isChecked() and self.mmproj_box.isEnabled()

        def work(ctx: JobContext) -> list[str]:
            items = plan_items(report.listing.repo_id, files_for(report, quant, mtp, proj),
                               None if folder else client.cache_dir, Path(folder) if folder else None)
            t = Transfer(client, report.listing.repo_id, report.listing.commit, items, ctx.report, ctx.cancel,
                         note=ctx.report)
            return [str(p) for p in t.run()]

        self._download_run = self._submit(work, self._downloaded, self._download_failed)

    def _folder(self) -> str:
        """The models folder chosen, or "" for the Hugging Face cache."""
        data = self.dest.currentData() or ""
        return "" if data == CHOOSE else data

    def cancel(self) -> None:
        if self._download_run is not None:
            self.jobs.cancel(self._download_run)  # its CancelToken: the download loop sees it within 2 s
        self.cancel_btn.setEnabled(False)
        self.status.setText("cancelling…")

    # --- what the worker says ------------------------------------------------------------------
    def _search_failed(self, why: str) -> None:
        self.search_btn.setEnabled(True)
        self.status.setText(why)

    def _searched(self, hits: list[RepoHit]) -> None:
        self.search_btn.setEnabled(True)
        self.results.setRowCount(0)
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

    def _judge_failed(self, why: str) -> None:
        self.status.setText(why)

    def _judged(self, report: RepoReport) -> None:
        if report.listing.repo_id != self._wanted_repo:
            return  # an answer for a repository chosen before this one
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

    def _progress(self, run: int, event: Any) -> None:
        if run != self._download_run:
            return
        if isinstance(event, Progress):
            self._last = event
            self.bar.setValue(int(event.fraction * 1000))
            self.status.setText(event.text())
        else:
            self.status.setText(str(event))  # a note (an older version's part dropped)

    def _downloaded(self, paths: list[str]) -> None:
        self._ended()
        self.bar.setValue(1000)
        self.status.setText(f"ready: {paths[0]} — selected in the window")
        self.model_ready.emit(paths[0], self._folder())

    def _download_failed(self, why: str) -> None:
        self._ended()
        self.status.setText(why)
        if self._last is not None and self._last.done:
            self.download_btn.setText("Resume")

    def _cancelled(self, run: int) -> None:
        self._runs.pop(run, None)
        if run != self._download_run:
            return
        self._ended()
        p = self._last
        kept = f"{size_text(p.done)} of {size_text(p.total)} kept" if p is not None else "what arrived is kept"
        self.status.setText(f"cancelled: {kept}; Resume continues where it stopped")
        self.download_btn.setText("Resume")

    def _ended(self) -> None:
        self.busy = False
        self._download_run = None
        self._idle()

    def _idle(self) -> None:
        self.cancel_btn.setEnabled(False)
        self.download_btn.setEnabled(self.report is not None and self.selected_quant() is not None)
        if self.download_btn.text() == "Resume" and not self.busy:
            self.download_btn.setText("Download")

    # --- closing -------------------------------------------------------------------------------
    def shutdown(self) -> bool:
        """Cancel a download (what arrived is kept for a resume) and end the worker's thread; whether it ended."""
        return self.jobs.shutdown()

    def closeEvent(self, event) -> None:
        if not self.busy:
            super().closeEvent(event)
            return
        self.cancel()  # closing stops the download; opening the dialog again resumes it
        super().closeEvent(event)
