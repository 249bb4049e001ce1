"""The models pane in the window: folders added and removed, the scan shown, a model selected,
"Get models…" opened and its finished download selected.

Which folders, which file to select and what a scan found are the catalog controller's
(ui/controllers/catalog.py); this keeps the window's part: the folder dialog and menu, the table
filled after a scan, the Live panel cleared when another model is chosen, and the Hub dialog, made
when it is first opened (huggingface_hub loads then).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QLabel, QMenu, QMessageBox, QWidget

from llama_launcher.core.host import hardware as host_hardware
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.ui.controllers.catalog import CatalogController
from llama_launcher.ui.controllers.llama_server import LlamaServerController
from llama_launcher.ui.controllers.plan import PlanController
from llama_launcher.ui.controllers.server import ServerController
from llama_launcher.ui.live_panel import LivePanel
from llama_launcher.ui.models_pane import ModelsPane

if TYPE_CHECKING:  # the dialog (and huggingface_hub) load when it is first opened
    from llama_launcher.ui.get_models_dialog import GetModelsDialog


class ModelsHost(Protocol):
    """What the models flow needs of the window that composes it."""
    catalog: CatalogController
    planner: PlanController
    llama: LlamaServerController
    server: ServerController
    models_pane: ModelsPane
    live: LivePanel
    model_title: QLabel

    def say(self, text: str) -> None: ...


class ModelsFlow(QObject):
    def __init__(self, window: ModelsHost, parent: QWidget) -> None:
        super().__init__(parent)
        self._w = window
        self._parent = parent  # dialogs and menus sit over it
        self.get_models: GetModelsDialog | None = None  # made when first opened
        pane, catalog = window.models_pane, window.catalog
        pane.model_selected.connect(lambda m: self.select(m if isinstance(m, ModelInfo) else None))
        pane.add_folder.connect(self.add_folder)
        pane.remove_folder.connect(self.remove_folder)
        pane.rescan.connect(lambda: catalog.rescan())
        pane.get_models.connect(self.open_get_models)
        pane.message.connect(window.say)
        catalog.scanning.connect(pane.scanning)
        catalog.progress.connect(pane.scan_progress)
        catalog.scanned.connect(self._scanned)

    def _scanned(self, select: str) -> None:
        w = self._w
        result = w.catalog.result
        assert result is not None
        keep = w.planner.model.path if w.planner.model else select
        w.planner.set_catalog(result)
        w.models_pane.show_catalog(result)
        w.models_pane.set_folders(w.catalog.folders)
        if not result.models:
            w.model_title.setText("No model selected")  # what to do is said once, in the empty table
        w.models_pane.select(select or keep or None)

    def select(self, m: ModelInfo | None) -> None:
        w = self._w
        current = w.planner.model
        if not w.server.running and m is not None and (current is None or current.path != m.path):
            w.live.reset()  # the last model's reply and numbers are not this one's (a running server's stay)
        w.planner.select(m)

    def add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self._parent, "Add a folder with .gguf models", str(Path.home()))
        if folder:
            self._w.catalog.add_folder(folder)

    def remove_folder(self, anchor: object = None) -> None:
        catalog = self._w.catalog
        if not catalog.folders:
            QMessageBox.information(self._parent, "Remove folder", "You have not added any folders; the default "
                                    "places are always scanned when they exist.")
            return
        menu = QMenu(self._parent)
        for f in catalog.folders:
            menu.addAction(f, functools.partial(catalog.remove_folder, f))
        where = anchor if isinstance(anchor, QWidget) else self._parent
        menu.exec(where.mapToGlobal(where.rect().bottomLeft() if where is anchor else where.rect().center()))

    def open_get_models(self) -> None:
        """The "Get models…" dialog; a finished download is scanned and selected, ready to launch."""
        if self.get_models is None:
            from llama_launcher.ui.get_models_dialog import (
                GetModelsDialog,  # huggingface_hub loads when first used
            )

            llama = self._w.llama
            self.get_models = GetModelsDialog(llama.hw or host_hardware.detect(), llama.caps,
                                              self._w.catalog.folders, self._parent)
            self.get_models.model_ready.connect(self._downloaded)
        self.get_models.show()

    def _downloaded(self, path: str, folder: str) -> None:
        catalog = self._w.catalog
        if folder and folder not in catalog.folders:
            catalog.add_paths([path])  # adds its folder, rescans, selects it
        else:
            catalog.rescan(select=path)

    def shutdown(self) -> None:
        if self.get_models is not None:
            self.get_models.shutdown()  # a download in progress stops; what arrived is kept for a resume
