"""The models on this computer: the folders to scan, the scan itself (a job), and which file to select.

Adding a folder or dropping files rescans; a dropped ``.gguf`` (or one just downloaded) is selected
once the scan has read it. The scan is bounded and reads only headers (core/models/catalog.py).
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, Signal

from llama_launcher.core.models import catalog as model_catalog
from llama_launcher.core.models.catalog import CatalogResult
from llama_launcher.ui.controllers.settings import SettingsController
from llama_launcher.ui.jobs import JobContext, JobRunner


class CatalogController(QObject):
    scanning = Signal()
    progress = Signal(int, int)  # files read, files found
    scanned = Signal(str)  # the path to select ('' for none): the result is in ``result``

    def __init__(self, settings: SettingsController, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self.result: CatalogResult | None = None
        self._select: str | None = None
        self._scan_run = 0
        self._jobs = JobRunner("scan-worker", "the model scan", self)
        self._jobs.progress.connect(lambda run, p: self.progress.emit(*p) if run == self._scan_run else None)

    @property
    def folders(self) -> list[str]:
        return list(self._settings.settings.folders)

    def rescan(self, select: str | None = None) -> None:
        """Scan again; afterwards select ``select`` (default: what was selected, else the last model)."""
        if select is not None:
            self._select = select
        folders = self.folders

        def scan(ctx: JobContext) -> CatalogResult:
            return model_catalog.scan(folders, include_defaults=True, progress=lambda i, n: ctx.report((i, n)))

        self.scanning.emit()
        self._scan_run = self._jobs.submit(scan, self._done, self._failed)

    def _done(self, result: object) -> None:
        assert isinstance(result, CatalogResult)
        self.result = result
        pick, self._select = self._select, None
        self.scanned.emit(pick or self._settings.settings.last_model or "")

    def _failed(self, why: str) -> None:
        self._done(CatalogResult(notes=[f"the scan failed: {why}"]))

    def add_folder(self, folder: str) -> None:
        if folder and folder not in self._settings.settings.folders:
            self._settings.settings.folders.append(folder)
            self._settings.changed()
            self.rescan()

    def remove_folder(self, folder: str) -> None:
        self._settings.settings.folders = [f for f in self._settings.settings.folders if f != folder]
        self._settings.changed()
        self.rescan()

    def add_paths(self, paths: list[str]) -> None:
        """Dropped files add their folder (the last .gguf is selected); dropped folders are added as they are."""
        target = None
        for p in paths:
            folder = p if os.path.isdir(p) else os.path.dirname(p)
            if p.lower().endswith(".gguf"):
                target = p
            if folder and folder not in self._settings.settings.folders:
                self._settings.settings.folders.append(folder)
        if target:
            self._settings.settings.last_model = target
        self._settings.changed()
        self.rescan(select=target)

    def shutdown(self) -> None:
        self._jobs.shutdown()
