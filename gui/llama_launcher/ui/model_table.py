"""The models table: a Qt item model over the catalog, sorted and searched through a proxy."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush, QColor

from llama_launcher.core.models.file_problem import explain_text
from llama_launcher.core.models.model_info import ModelInfo, format_params
from llama_launcher.core.state.units import file_size

COLUMNS = ["Name", "Architecture", "Params", "Quant", "Size", "Context", "MTP", "Folder"]
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
MODEL_ROLE = Qt.ItemDataRole.UserRole + 2

_Index = QModelIndex | QPersistentModelIndex


def fmt_size(n: int) -> str:
    """The file's size in decimal units (core/state/units.py: the README's 253 MB)."""
    return file_size(n) if n > 0 else "–"


class ModelTableModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.models: list[ModelInfo] = []

    def set_models(self, models: list[ModelInfo]) -> None:
        self.beginResetModel()
        self.models = list(models)
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.models)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def model_at(self, row: int) -> ModelInfo | None:
        return self.models[row] if 0 <= row < len(self.models) else None

    def row_of(self, path: str) -> int:
        for i, m in enumerate(self.models):
            if m.path == path:
                return i
        return -1

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        m = self.models[index.row()]
        col = index.column()
        if role == MODEL_ROLE:
            return m
        if role == Qt.ItemDataRole.DisplayRole:
            if m.error and col == 1:
                return "unreadable"
            return [
                m.name, m.architecture or "–", format_params(m.parameters), m.quantization or "–", fmt_size(m.file_size),
                f"{m.context_length:,}" if m.context_length else "–", "MTP" if m.is_mtp else "", m.folder,
            ][col]
        if role == SORT_ROLE:
            return [m.name.lower(), m.architecture or "", m.parameters or 0, m.quantization or "", m.file_size,
                    m.context_length or 0, 1 if m.is_mtp else 0, m.folder.lower()][col]
        if role == Qt.ItemDataRole.ToolTipRole:
            if m.error:
                return f"{m.file_name}: {explain_text(m.error)}"
            tip = [m.path]
            if m.is_mtp:
                tip.append(f"MTP: {m.mtp_evidence}")
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
        if role == Qt.ItemDataRole.ForegroundRole and col == 6 and m.is_mtp:
            return QBrush(QColor("#7c3aed"))
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (2, 4, 5):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
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

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        if not self._needle:
            return True
        model = self.sourceModel()
        assert isinstance(model, ModelTableModel)
        m = model.models[source_row]
        hay = " ".join([m.name, m.architecture or "", m.quantization or "", m.folder, m.file_name,
                        "mtp" if m.is_mtp else ""]).lower()
        return all(part in hay for part in self._needle.split())
