"""The llama-server tab's offers, driven: one release check per session (asked again after a failed
one), downloads on request, and the installed builds (listed after every probe; "Use this build"
switches, and the window then probes and uses that one like any llama-server chosen).

The window hands this controller what it learns (the binary in use, its capabilities, the
hardware) and listens for ``installed``: the path of a llama-server that was just downloaded,
verified and probed, which the window then makes the one in use. Cancel goes straight to the
worker's threading.Event from the GUI thread (a queued call would wait behind the download).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.llama_server.discovery import Candidate, candidates
from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.core.llama_server.releases import DownloadChoice
from llama_launcher.ui.side_panels import ServerPanel
from llama_launcher.ui.workers import ReleaseWorker, start_in_thread, stop_thread


class ServerSetup(QObject):
    request_check = Signal()
    request_download = Signal(object)
    request_list = Signal(str)
    request_use = Signal(str)
    installed = Signal(str)

    def __init__(self, panel: ServerPanel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.panel = panel
        self.choice: DownloadChoice | None = None
        self.worker = ReleaseWorker()
        self._thread = start_in_thread(self.worker, "release-worker")
        self._checked = False
        self._in_use = ""
        self.request_check.connect(self.worker.check)
        self.request_download.connect(self.worker.download)
        self.worker.checked.connect(self._release_found)
        self.worker.check_failed.connect(self._no_release)
        self.worker.progress.connect(panel.build_progress)
        self.worker.finished.connect(self._finished)
        self.request_list.connect(self.worker.list_builds)
        self.request_use.connect(self.worker.use_build)
        self.worker.builds_listed.connect(panel.installed_builds.show_builds)
        self.worker.build_used.connect(self._build_used)
        panel.installed_builds.use_build.connect(self.use_build)
        panel.download.connect(self.download)
        panel.cancel_download.connect(self.cancel)

    def refresh(self, binary: Candidate | None, caps: Capabilities | None, hw: Hardware | None,
                explicit: str | None = None) -> None:
        """After every probe: the other llama-servers found, the hardware, and (once) the release check."""
        in_use = binary.path if binary is not None else None
        others = [c for c in candidates(explicit, "setting") if c.path != in_use and c.source != "setting"]
        self.panel.show_candidates(others, one_in_use=in_use is not None)
        self.panel.show_hardware(hw)
        self._in_use = in_use or ""
        self.request_list.emit(self._in_use)
        if not self._checked:
            self._checked = True
            self.request_check.emit()

    def use_build(self, name: str) -> None:
        self.panel.installed_builds.switching(name)
        self.request_use.emit(name)

    def _build_used(self, path: str, error: str) -> None:
        if error:
            self.panel.problem.setText(error)
            self.request_list.emit(self._in_use)
        else:
            self.panel.use_binary.emit(path)  # probed and made the one in use by the window, as any choice

    def _no_release(self, why: str) -> None:
        self._checked = False  # offline at start, say: the next probe (a new binary chosen) asks again
        self.panel.show_release(None, why)

    def _release_found(self, choice: DownloadChoice) -> None:
        self.choice = choice
        self.panel.show_release(choice)

    def download(self) -> None:
        if self.choice is None:
            return
        self.panel.build_log.clear()
        self.panel.problem.setText("")
        self.panel.downloading(True)
        self.worker.arm()
        self.request_download.emit(self.choice)

    def cancel(self) -> None:
        self.worker.cancel()  # a threading.Event: the download loop sees it within one chunk
        self.panel.cancel_btn.setEnabled(False)
        self.panel.cancel_btn.setText("Cancelling…")

    def _finished(self, path: str, error: str) -> None:
        self.panel.cancel_btn.setText("Cancel download")
        self.panel.download_finished(error)
        if path:
            self.installed.emit(path)

    def shutdown(self) -> None:
        self.worker.cancel()
        stop_thread(self._thread, self.worker)
