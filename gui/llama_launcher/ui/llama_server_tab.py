"""The llama-server tab, bound to its controller: the binary in use, probing, downloads, builds, installed builds.

What the controller learns is shown on the tab (and the Hardware tab), a problem goes to the banner
as one fact ("binary"), and what the user clicks on the tab goes to the controller.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog

from llama_launcher.core.llama_server.offers import no_server_notice
from llama_launcher.ui.controllers.llama_server import LlamaServerController
from llama_launcher.ui.controllers.notices import NoticeCenter
from llama_launcher.ui.hardware_panel import HardwarePanel
from llama_launcher.ui.server_panel import ServerPanel

SERVER_TAB = "llama-server"  # the banner leaves this tab's facts to it while it is shown


class LlamaServerTab(QObject):
    wants_attention = Signal()  # the tab has what the user must see first (no llama-server, a broken one)
    changed = Signal()  # the binary or its probe changed: what Launch can do may have changed

    def __init__(self, llama: LlamaServerController, panel: ServerPanel, hardware_panel: HardwarePanel,
                 notices: NoticeCenter, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.llama, self.panel, self.hardware_panel, self.notices = llama, panel, hardware_panel, notices
        self.visible = False
        self._connect()
        panel.show_build_offer(llama.build_offer())

    def _connect(self) -> None:
        llama, panel = self.llama, self.panel
        llama.binary_changed.connect(self._binary_changed)
        llama.probed.connect(self._probed)
        llama.refused.connect(self._binary_refused)
        llama.release_changed.connect(self._release_changed)
        llama.builds_changed.connect(lambda: panel.installed_builds.show_builds(
            llama.builds, llama.binary.path if llama.binary else None))
        llama.progress.connect(panel.show_progress)
        llama.busy_changed.connect(self._llama_busy)
        llama.job_failed.connect(lambda _kind, why: panel.show_problem(why))
        panel.choose.connect(self._choose_binary)
        panel.use_detected.connect(self._use_detected)
        panel.use_binary.connect(self._use_binary)
        panel.build.connect(llama.build)
        panel.download.connect(llama.download)
        panel.cancel.connect(llama.cancel)  # direct: the job's token stops the work at once
        panel.remove_interrupted.connect(llama.remove_interrupted)
        panel.check_again.connect(llama.check_releases)
        panel.installed_builds.use_build.connect(self._use_build)
        self._llama_busy()

    def _binary_changed(self) -> None:
        llama = self.llama
        self.panel.offer_detected(llama.detected_other)
        if llama.binary is None:
            self.panel.show_binary(None, "", None, "")
            self.hardware_panel.show_hardware(None, have_server=False)
            self._no_server_notice()
            self.wants_attention.emit()
        else:
            self.panel.show_binary(llama.binary.path, llama.binary.source, None, "probing…")
        self.changed.emit()

    def _no_server_notice(self) -> None:
        self.notices.show("binary", no_server_notice(self.llama.release_status),
                          action=("Open the llama-server tab", self.wants_attention.emit), tab=SERVER_TAB)

    def _release_changed(self) -> None:
        llama = self.llama
        self.panel.show_release(llama.release, llama.release_status)
        self.panel.show_build_offer(llama.build_offer())
        if llama.binary is None:  # offline now, or online again: the banner's promise follows
            self._no_server_notice()

    def shown(self) -> None:
        """The tab became visible: list the installed builds now (each is run once to say what it can do)."""
        self.visible = True
        self.llama.list_builds()

    def hidden(self) -> None:
        self.visible = False

    def _probed(self) -> None:
        llama = self.llama
        if self.visible:
            llama.list_builds()
        self.hardware_panel.show_hardware(llama.hw, have_server=llama.binary is not None)
        self.panel.show_hardware(llama.hw)
        self.panel.show_candidates(llama.others, one_in_use=llama.binary is not None)
        if llama.binary is not None:
            why = f"This llama-server cannot be used: {llama.probe_error}" if llama.probe_error else ""
            self.panel.show_binary(llama.binary.path, llama.binary.source, llama.caps, why)
            if llama.probe_error:
                self.notices.show("binary", f"llama-server at {llama.binary.path} cannot be used: {llama.probe_error}",
                                  error=True, tab=SERVER_TAB)
                self.wants_attention.emit()
            else:
                self.notices.clear("binary")
        self.changed.emit()

    def _binary_refused(self, path: str, error: str) -> None:
        keep = f"; still using {self.llama.binary.path}" if self.llama.binary and self.llama.caps else ""
        self.panel.show_problem(f"{path} was not used: {error}")
        self.notices.show("binary", f"{Path(path).name} was not used: {error}{keep}", error=True, tab=SERVER_TAB)

    def _choose_binary(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.panel, "Choose llama-server", str(Path.home()))
        if path:
            self._use_binary(path)

    def _use_binary(self, path: str) -> None:
        self.panel.show_problem(f"checking {path}…")
        self.llama.use_binary(path)

    def _use_detected(self) -> None:
        self.notices.clear("binary")
        self.llama.use_detected()

    def _use_build(self, name: str) -> None:
        self.panel.installed_builds.switching(name)
        self.llama.use_build(name)

    def _llama_busy(self) -> None:
        self.panel.set_busy(self.llama.busy)
        found = self.llama.interrupted
        self.panel.show_interrupted(found.describe() if found is not None and not self.llama.busy else "")
