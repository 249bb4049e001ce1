"""The Hardware tab: CPU, memory, GPUs, what llama-server itself sees, and where a launch runs."""

from __future__ import annotations

from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QVBoxLayout, QWidget

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.llama_server.idle_gpu import idle_gpu_notice
from llama_launcher.core.state.units import memory_mib


def value_label() -> QLabel:
    lbl = QLabel("–")
    lbl.setWordWrap(True)
    lbl.setTextInteractionFlags(lbl.textInteractionFlags() | lbl.textInteractionFlags().TextSelectableByMouse)
    return lbl


class HardwarePanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cpu = value_label()
        self.ram = value_label()
        self.gpus = value_label()
        self.backend = value_label()
        self.branch = value_label()
        self.branch.setObjectName("sectionTitle")
        self.idle_gpu = QLabel("")
        self.idle_gpu.setObjectName("failureReason")
        self.idle_gpu.setWordWrap(True)
        self.idle_gpu.setVisible(False)
        box = QGroupBox("This machine")
        form = QFormLayout(box)
        form.addRow("CPU", self.cpu)
        form.addRow("Memory", self.ram)
        form.addRow("GPUs", self.gpus)
        form.addRow("llama-server sees", self.backend)
        form.addRow("Runs on", self.branch)
        lay = QVBoxLayout(self)
        lay.addWidget(box)
        lay.addWidget(self.idle_gpu)
        lay.addStretch(1)

    def show_hardware(self, hw: Hardware | None, have_server: bool = True) -> None:
        if hw is None:
            self.cpu.setText("detecting…")
            return
        cores = f"{hw.physical_cores or '?'} cores, {hw.logical_cores or '?'} threads"
        self.cpu.setText(f"{hw.cpu} ({cores})")
        kind = "unified memory" if hw.apple_silicon else "RAM"
        self.ram.setText(f"{memory_mib(hw.ram_total_mib)} {kind}, {memory_mib(hw.ram_available_mib)} available")
        gpus = [f"{g.name} [{g.backend}] {memory_mib(g.memory_total_mib)} ({memory_mib(g.memory_free_mib)} free)"
                for g in hw.gpus]
        self.gpus.setText("\n".join(gpus) or gpu_absence(hw.notes))
        if hw.backend_devices is None:
            self.backend.setText("not asked yet: there is no llama-server to ask (see the llama-server tab)"
                                 if not have_server else "not asked: this llama-server cannot list its devices "
                                 "(it has no --list-devices)")
        else:
            self.backend.setText("\n".join(f"{d.backend}: {d.name} ({memory_mib(d.memory_total_mib)})" for d in hw.backend_devices)
                                 or "no GPU devices: llama-server runs on the CPU")
        gpu, why = hw.gpu_branch()
        where = "the GPU" if gpu else "Apple Silicon (Metal)" if hw.apple_silicon else "the CPU"
        self.branch.setText(f"{where} — {why}")
        notice = idle_gpu_notice(hw)
        self.idle_gpu.setText(notice or "")
        self.idle_gpu.setVisible(bool(notice))


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
