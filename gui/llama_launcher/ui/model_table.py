"""The models table: a Qt item model over the catalog, sorted and searched through a proxy.

A speculator head (an MTP head in its own file, a Gemma 4 assistant, ...) is not a model: it is a row
under each model it fits, indented and greyed, that cannot be selected; sorting keeps it under its
model and a search that shows the model shows its heads.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush, QColor

from llama_launcher.core.models.file_problem import explain_text
from llama_launcher.core.models.model_info import ModelInfo, format_params
from llama_launcher.core.models.sidecar import head_label, head_line, kind_of
from llama_launcher.core.state.units import file_size

COLUMNS = ["Name", "Architecture", "Params", "Quant", "Size", "Context", "MTP", "Folder"]
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
MODEL_ROLE = Qt.ItemDataRole.UserRole + 2
HEAD_ROLE = Qt.ItemDataRole.UserRole + 3  # a head row: the head (MODEL_ROLE is None there)
HEAD_COLOR = "#6b7280"

_Index = QModelIndex | QPersistentModelIndex


def fmt_size(n: int) -> str:
    """The file's size in decimal units (core/state/units.py: the README's 253 MB)."""
    return file_size(n) if n > 0 else "–"


class ModelTableModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.models: list[ModelInfo] = []  # every row: a model, or the head shown under the model above it
        self.target_row: dict[int, int] = {}  # a head row -> the row of the model it drafts for
        self.mtp_from_head: set[int] = set()  # rows of models whose MTP comes from a head file

    def set_models(self, models: list[ModelInfo], heads: list[ModelInfo] | None = None) -> None:
        by_path = {h.path: h for h in heads or []}
        self.beginResetModel()
        self.models, self.target_row, self.mtp_from_head = [], {}, set()
        for m in models:
            row = len(self.models)
            self.models.append(m)
            for path in m.heads:
                if path in by_path:
                    self.target_row[len(self.models)] = row
                    self.models.append(by_path[path])
                    if kind_of(by_path[path]) in ("mtp", "gemma4-assistant"):
                        self.mtp_from_head.add(row)
        self.endResetModel()

    def is_head(self, row: int) -> bool:
        return row in self.target_row

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if index.isValid() and self.is_head(index.row()):
            return Qt.ItemFlag.ItemIsEnabled  # shown, never selected: a head cannot be launched alone
        return super().flags(index)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.models)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def row_of(self, path: str) -> int:
        for i, m in enumerate(self.models):
            if m.path == path and not self.is_head(i):
                return i
        return -1

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        m = self.models[index.row()]
        col = index.column()
        if self.is_head(index.row()):
            return self._head_data(m, self.models[self.target_row[index.row()]], col, role)
        if role == MODEL_ROLE:
            return m
        if role == Qt.ItemDataRole.DisplayRole:
            if m.error and col == 1:
                return "unreadable"
            mtp = m.is_mtp or index.row() in self.mtp_from_head
            return [
                m.name, m.architecture or "–", (format_params(m.parameters) if m.parameters else "–"), m.quantization or "–", fmt_size(m.file_size),
                f"{m.context_length:,}" if m.context_length else "–", "MTP" if mtp else "", m.folder,
            ][col]
        if role == SORT_ROLE:
            mtp = m.is_mtp or index.row() in self.mtp_from_head
            return [m.name.lower(), m.architecture or "", m.parameters or 0, m.quantization or "", m.file_size,
                    m.context_length or 0, 1 if mtp else 0, m.folder.lower()][col]
        if role == Qt.ItemDataRole.ToolTipRole:
            if m.error:
                return f"{m.file_name}: {explain_text(m.error)}"
            tip = [m.path]
            if m.is_mtp:
                tip.append(f"MTP: {m.mtp_evidence}")
            if index.row() in self.mtp_from_head:
                tip.append("MTP: from its MTP head in its own file (listed under it)")
            if m.trunk_parameters and m.mtp_parameters:
                tip.append(f"trunk {format_params(m.trunk_parameters)} + MTP head {format_params(m.mtp_parameters)}")
            if m.split_count > 1:
                tip.append(f"split model: {m.split_count} parts")
            if m.mmproj:
                tip.append("vision projector: " + ", ".join(p.rsplit('/', 1)[-1] for p in m.mmproj))
            if not m.has_chat_template:
                tip.append("no chat template in the file: most likely a base model (Try it sends plain text)")
            return "\n".join(tip)
        if role == Qt.ItemDataRole.ForegroundRole and m.error:
            return QBrush(QColor("#dc2626"))
        if role == Qt.ItemDataRole.ForegroundRole and col == 6 and (m.is_mtp or index.row() in self.mtp_from_head):
            return QBrush(QColor("#7c3aed"))
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (2, 4, 5):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


    @staticmethod
    def _head_data(h: ModelInfo, target: ModelInfo, col: int, role: int) -> Any:
        if role == HEAD_ROLE:
            return h
        if role == Qt.ItemDataRole.DisplayRole:
            return ["└ " + head_line(h), h.architecture or "–", (format_params(h.parameters) if h.parameters else "–"), h.quantization or "–",
                    fmt_size(h.file_size), "–", "head", h.folder][col]
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"{h.path}\n{head_label(kind_of(h))} that drafts for {target.name} ({target.file_name}); it is "
                    "not a model and cannot be launched on its own: select the model above (its MTP setting uses "
                    "this file)")
        if role == Qt.ItemDataRole.ForegroundRole:
            return QBrush(QColor(HEAD_COLOR))
        if role == Qt.ItemDataRole.AccessibleTextRole and col == 0:
            return f"{head_line(h)}, drafts for {target.name}, not launchable"
        return None


class ModelFilterProxy(QSortFilterProxyModel):
    """Search over name, architecture, quantization and folder; numeric columns sort by value."""

    def __init__(self) -> None:
        super().__init__()
        self.setSortRole(SORT_ROLE)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self._needle = ""

    def set_search(self, text: str) -> None:
        if hasattr(self, "endFilterChange"):  # Qt 6.10+
            self.beginFilterChange()
            self._needle = text.strip().lower()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:  # pragma: no cover - older Qt
            self._needle = text.strip().lower()
            self.invalidateFilter()

    def lessThan(self, left: _Index, right: _Index) -> bool:
        """By the column's value, each head kept right under its model whichever way the column sorts."""
        model = self.sourceModel()
        assert isinstance(model, ModelTableModel)
        lt, rt = model.target_row.get(left.row(), left.row()), model.target_row.get(right.row(), right.row())
        if lt != rt:
            return super().lessThan(model.index(lt, left.column()), model.index(rt, right.column()))
        rank_l, rank_r = int(model.is_head(left.row())), int(model.is_head(right.row()))
        if rank_l == rank_r:
            return left.row() < right.row()
        descending = self.sortOrder() == Qt.SortOrder.DescendingOrder
        return rank_l > rank_r if descending else rank_l < rank_r

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        model = self.sourceModel()
        assert isinstance(model, ModelTableModel)
        if source_row in model.target_row:  # a head shows when its model does
            return self.filterAcceptsRow(model.target_row[source_row], source_parent)
        if not self._needle:
            return True
        m = model.models[source_row]
        hay = " ".join([m.name, m.architecture or "", m.quantization or "", m.folder, m.file_name,
                        "mtp" if m.is_mtp else ""]).lower()
        return all(part in hay for part in self._needle.split())
