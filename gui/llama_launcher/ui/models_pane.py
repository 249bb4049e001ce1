"""The models pane: the catalog as a searchable, sortable table, with the folder buttons under it.

The model's name is what people look for, so the Name column takes the width that is left and
never shrinks below what a typical name needs; the other columns size to their contents. Signals
go up to the window (a model was selected, a folder should be added); the pane decides nothing.
"""

from __future__ import annotations

import subprocess
import sys

from PySide6.QtCore import QModelIndex, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from llama_launcher.core.models.catalog import CatalogResult, platform_reveal_command, reveal_words
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.models.sidecar import head_line, refusal
from llama_launcher.ui.model_table import COLUMNS, HEAD_ROLE, MODEL_ROLE, ModelFilterProxy, ModelTableModel
from llama_launcher.ui.resources import icon

NAME_MIN_WIDTH = 220  # "gemma-3-270m-it-qat-Q4_K_M" and most names fit; longer ones elide in the middle
TABLE_MAX_MIN_WIDTH = 530  # + the pane's margins, the splitter handle and the setup's 410: the 960-pixel window
PANE_MARGINS = 12


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class ModelsPane(QWidget):
    model_selected = Signal(object)  # ModelInfo, or an empty tuple for none (never None through a signal)
    add_folder = Signal()
    remove_folder = Signal(object)  # the button, to place the menu under it
    rescan = Signal()
    get_models = Signal()  # the "Get models…" dialog (ui/get_models_dialog.py)
    message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table_model = ModelTableModel()
        self.proxy = ModelFilterProxy()
        self.proxy.setSourceModel(self.table_model)
        self.table = self._make_table()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search models (name, architecture, quantization, folder)")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Filters the list as you type; Enter selects the first match")
        self.search.setAccessibleName("Search models")
        self.add_btn = QPushButton(icon("add"), "Add folder…")
        self.add_btn.setToolTip("Add a folder to scan for .gguf models (you can also drop files or folders here)")
        self.remove_btn = QPushButton(icon("remove"), "Remove…")
        self.remove_btn.setEnabled(False)  # until there is a folder of the user's own to remove (set_folders)
        self.rescan_btn = QPushButton(icon("refresh"), "Rescan")
        self.reveal_btn = QPushButton(icon("folder"), "Reveal")
        self.reveal_btn.setToolTip(reveal_words())
        self.reveal_btn.setEnabled(False)  # until a model is selected
        self.empty = QLabel("", self.table.viewport())  # the table's own words when it has no rows
        self.empty.setObjectName("muted")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setVisible(False)
        self.get_btn = QPushButton(icon("add"), "Get models…")
        self.get_btn.setToolTip("Search Hugging Face and download the quant that fits this machine")
        self.progress = QProgressBar()
        self.progress.setMaximumHeight(6)
        self.progress.setTextVisible(False)
        self.progress.setVisible(False)
        self.status = QLabel("")
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 4, 8)
        title = QLabel("Models")
        title.setObjectName("sectionTitle")
        lay.addWidget(title)
        lay.addWidget(self.search)
        lay.addWidget(self.progress)
        lay.addWidget(self.table, 1)
        row = QHBoxLayout()
        for b in (self.get_btn, self.add_btn, self.remove_btn, self.rescan_btn, self.reveal_btn):
            row.addWidget(b)
        row.addStretch(1)
        lay.addLayout(row)
        lay.addWidget(self.status)
        self.setMinimumWidth(NAME_MIN_WIDTH + 160)
        self._selected_path: str | None = None  # stays selected while a search hides it

        self.search.textChanged.connect(self._search_changed)
        self.search.returnPressed.connect(self.select_first_match)
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)
        self.table.customContextMenuRequested.connect(self._menu)
        self.add_btn.clicked.connect(self.add_folder)
        self.remove_btn.clicked.connect(lambda: self.remove_folder.emit(self.remove_btn))
        self.rescan_btn.clicked.connect(self.rescan)
        self.reveal_btn.clicked.connect(self.reveal_selected)
        self.get_btn.clicked.connect(self.get_models)
        self.proxy.modelReset.connect(self._fit_name_column)
        self.proxy.layoutChanged.connect(self._fit_name_column)
        for signal in (self.proxy.modelReset, self.proxy.layoutChanged, self.proxy.rowsInserted, self.proxy.rowsRemoved):
            signal.connect(self._show_empty)
        self.set_folders([])

    def _make_table(self) -> QTableView:
        """The models table: sorted by name, one row selected, the name column stretching, the rest fitted."""
        table = QTableView()
        table.setObjectName("modelsTable")
        table.setModel(self.proxy)
        table.setSortingEnabled(True)
        table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.verticalHeader().setVisible(False)
        table.setAlternatingRowColors(True)
        table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        table.setWordWrap(False)
        table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        table.setAccessibleName("Models")
        table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        header = table.horizontalHeader()
        header.setMinimumSectionSize(40)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        table.setColumnHidden(COLUMNS.index("Folder"), True)
        table.setColumnHidden(COLUMNS.index("Architecture"), True)  # in the title and the tooltip
        return table

    # --- data in --------------------------------------------------------------------------------
    def scanning(self) -> None:
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.status.setText("scanning…")
        self.rescan_btn.setEnabled(False)

    def scan_progress(self, i: int, n: int) -> None:
        self.progress.setRange(0, max(n, 1))
        self.progress.setValue(i)

    def show_catalog(self, result: CatalogResult) -> None:
        self.progress.setVisible(False)
        self.rescan_btn.setEnabled(True)
        self.table_model.set_models(result.models, result.heads)
        ok = sum(1 for m in result.models if m.launchable)
        bad = sum(1 for m in result.models if m.error)
        heads = f", {plural(len(result.heads), 'speculator head')}" if result.heads else ""
        alone = [f"{head_line(h)} fits none of the models found (a head is not a model: it cannot run on its own)"
                 for h in result.heads if not any(h.path in m.heads for m in result.models)]
        folders = ", ".join(f"{f.source}: {f.path}" for f in result.folders)
        scanned = f"scanned {folders}" if folders else "no folder to scan yet (none of the usual places exists here)"
        self.status.setText(plural(ok, "model") + heads + (f", {bad} unreadable" if bad else "") +
                            f" · {scanned}" + "".join(f"\n{n}" for n in [*alone, *result.notes]))

    def set_folders(self, folders: list[str]) -> None:
        """The folders the user added: Remove… applies only when there is one."""
        self.remove_btn.setEnabled(bool(folders))
        self.remove_btn.setToolTip("Stop scanning one of the folders you added" if folders else
                                   "You have not added a folder: the usual places (LM Studio, the Hugging Face "
                                   "cache, …) are always scanned")

    def _show_empty(self, *_args: object) -> None:
        """No rows: say why and what to do, inside the table (an empty white box said nothing)."""
        if self.proxy.rowCount() > 0:
            self.empty.setVisible(False)
            return
        needle = self.search.text().strip()
        self.empty.setText(f"No model matches “{needle}”." if needle and self.table_model.models else
                           "No models yet.\nAdd a folder with .gguf files, drop .gguf files onto this window, "
                           "or use Get models… to download one that fits this computer.")
        self._place_empty()
        self.empty.setVisible(True)

    def _place_empty(self) -> None:
        self.empty.setGeometry(self.table.viewport().rect().adjusted(16, 16, -16, -16))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place_empty()

    def _fit_name_column(self) -> None:
        """Name stretches; make sure the table is never so narrow that Name gets less than it needs."""
        header = self.table.horizontalHeader()
        others = sum(header.sectionSize(c) for c in range(1, len(COLUMNS)) if not self.table.isColumnHidden(c))
        self.table.setMinimumWidth(min(NAME_MIN_WIDTH + others + 4, TABLE_MAX_MIN_WIDTH))
        self.setMinimumWidth(self.table.minimumWidth() + PANE_MARGINS)  # the pane never clips its table

    # --- selection --------------------------------------------------------------------------------
    def select(self, path: str | None) -> None:
        row = self.table_model.row_of(path) if path else -1
        if row < 0:
            row = next((i for i, m in enumerate(self.table_model.models) if m.launchable), -1)
        if row >= 0:
            idx = self.proxy.mapFromSource(self.table_model.index(row, 0))
            if not idx.isValid():  # hidden by the search: selected all the same
                self._selected_path = self.table_model.models[row].path
                self.model_selected.emit(self.table_model.models[row])
                return
            self.table.setCurrentIndex(idx)
            self.table.scrollTo(idx)
        else:
            self.model_selected.emit(())

    def current(self) -> ModelInfo | None:
        idx = self.table.currentIndex()
        return self.proxy.data(idx, MODEL_ROLE) if idx.isValid() else None

    def _row_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        head = self.proxy.data(current, HEAD_ROLE) if current.isValid() else None
        if head is not None:  # the keys moved onto a head: say why it is not a model, stay on the model
            source = self.proxy.mapToSource(current).row()
            target = self.table_model.models[self.table_model.target_row[source]]
            self.message.emit(refusal(head, [target]))
            back = previous if previous.isValid() and self.proxy.data(previous, HEAD_ROLE) is None else \
                self.proxy.mapFromSource(self.table_model.index(self.table_model.target_row[source], 0))
            self.table.setCurrentIndex(back)
            return
        m = self.proxy.data(current, MODEL_ROLE) if current.isValid() else None
        self._selected_path = m.path if m is not None else None
        self.reveal_btn.setEnabled(m is not None)
        self.model_selected.emit(m if m is not None else ())

    def _search_changed(self, text: str) -> None:
        """Typing a search never changes the model being set up: only a click or the keys do.

        Qt moves the current row to a neighbour when a filter hides it; that move is undone here,
        and the selected model is shown selected again as soon as the search lets it through."""
        sel = self.table.selectionModel()
        blocked = sel.blockSignals(True)
        try:
            self.proxy.set_search(text)
            path = self._selected_path
            row = self.table_model.row_of(path) if path else -1
            idx = self.proxy.mapFromSource(self.table_model.index(row, 0)) if row >= 0 else QModelIndex()
            if idx.isValid():
                self.table.setCurrentIndex(idx)
                self.table.scrollTo(idx)
            else:
                sel.clear()
        finally:
            sel.blockSignals(blocked)
        self.table.viewport().update()
        self._show_empty()
        if path and not idx.isValid() and row >= 0:
            self.message.emit(f"{self.table_model.models[row].name} stays selected (hidden by the search)")

    def select_first_match(self) -> None:
        """Enter in the search field: the first model it shows becomes the selected one."""
        if self.proxy.rowCount() > 0:
            self.table.setCurrentIndex(self.proxy.index(0, 0))  # a model: a head sorts under its model
            self.table.setFocus()

    def _menu(self, pos) -> None:
        menu = QMenu(self)
        where = "Finder" if sys.platform == "darwin" else "Explorer" if sys.platform == "win32" else "file manager"
        menu.addAction(f"Reveal in {where}", self.reveal_selected)
        m = self.current()
        menu.addAction("Copy path", lambda: QGuiApplication.clipboard().setText(m.path if m else ""))
        menu.exec(self.table.viewport().mapToGlobal(pos))

    def reveal_selected(self) -> None:
        m = self.current()
        if m is None:
            return
        if sys.platform.startswith("linux"):
            QDesktopServices.openUrl(QUrl.fromLocalFile(m.folder))
            return
        try:
            subprocess.Popen(platform_reveal_command(m.path))  # noqa: S603 - argv list, no shell
        except OSError as exc:
            self.message.emit(f"cannot reveal the file: {exc.strerror or exc}")
