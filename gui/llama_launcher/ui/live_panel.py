"""The live panel: decode t/s as a big number and a chart, from the server's own numbers.

Two sources, shown apart: the launcher's own requests ("Try it") report ``timings`` per token,
and every client's traffic (editors, chat apps) is read from ``/metrics`` counter deltas. A
wall-clock speed is never shown.
"""

from __future__ import annotations

import collections
import time

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from llama_launcher.core.speed_stats import Speed
from llama_launcher.ui.resources import icon

CHART_POINTS = 180
OWN_TRAFFIC_GRACE_S = 2.5  # a /metrics poll (1 s) may still count the tail of our own request


class SpeedChart(QWidget):
    """A small line chart of decode t/s over time (no QtCharts: it is not in PySide6-Essentials)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.points: collections.deque[tuple[float, float]] = collections.deque(maxlen=CHART_POINTS)
        self.setMinimumHeight(120)
        self.setAccessibleName("Decode tokens per second over time")

    def add(self, value: float) -> None:
        self.points.append((time.monotonic(), value))
        self.update()

    def clear(self) -> None:
        self.points.clear()
        self.update()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        rect = QRectF(self.rect()).adjusted(36, 8, -8, -18)
        p.setPen(QPen(pal.color(QPalette.ColorRole.Mid), 1))
        p.drawRect(rect)
        if not self.points:
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, "no tokens generated yet")
            return
        top = max(v for _, v in self.points) * 1.15 or 1.0
        p.drawText(QRectF(0, rect.top() - 6, 34, 14), Qt.AlignmentFlag.AlignRight, f"{top:.0f}")
        p.drawText(QRectF(0, rect.bottom() - 8, 34, 14), Qt.AlignmentFlag.AlignRight, "0")
        t0, t1 = self.points[0][0], self.points[-1][0]
        span = max(t1 - t0, 1e-6)
        path = QPainterPath()
        for i, (t, v) in enumerate(self.points):
            x = rect.left() + (rect.width() * (t - t0) / span if len(self.points) > 1 else rect.width())
            y = rect.bottom() - rect.height() * v / top
            if i == 0:
                path.moveTo(QPointF(x, y))
            else:
                path.lineTo(QPointF(x, y))
        p.setPen(QPen(pal.color(QPalette.ColorRole.Highlight), 2))
        p.drawPath(path)
        p.setPen(QPen(pal.color(QPalette.ColorRole.Text)))
        p.drawText(QRectF(rect.left(), rect.bottom() + 2, rect.width(), 14), Qt.AlignmentFlag.AlignRight,
                   f"last {span:.0f} s")


class Stat(QWidget):
    def __init__(self, title: str, tip: str) -> None:
        super().__init__()
        self.value = QLabel("–")
        self.value.setObjectName("sectionTitle")
        label = QLabel(title)
        label.setObjectName("muted")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.value)
        lay.addWidget(label)
        self.setToolTip(tip)

    def set(self, text: str) -> None:
        self.value.setText(text)


class LivePanel(QWidget):
    send_prompt = Signal(str, int)
    cancel_prompt = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.own_speed: Speed | None = None
        self.all_speed: Speed | None = None
        self._own_active = False
        self._own_finished_at = 0.0
        self.tokens_total = 0

        self.big = QLabel("–")
        self.big.setObjectName("bigNumber")
        self.big.setAccessibleName("Decode tokens per second")
        unit = QLabel("decode tokens/s")
        unit.setObjectName("bigUnit")
        self.source = QLabel("waiting for the first reply")
        self.source.setObjectName("muted")
        self.prompt_stat = Stat("prompt tokens/s", "Prompt processing speed (prefill), from the server's timings")
        self.accept_stat = Stat("draft acceptance", "Share of drafted tokens the model accepted (speculative decoding)")
        self.tokens_stat = Stat("tokens generated", "Tokens generated in the last reply")
        self.clients_stat = Stat("all clients (t/s)", "Decode speed of every client's traffic, from /metrics")
        self.chart = SpeedChart()

        head = QHBoxLayout()
        numbers = QVBoxLayout()
        row = QHBoxLayout()
        row.addWidget(self.big)
        row.addWidget(unit, 0, Qt.AlignmentFlag.AlignBottom)
        row.addStretch(1)
        numbers.addLayout(row)
        numbers.addWidget(self.source)
        head.addLayout(numbers, 1)
        grid = QGridLayout()
        grid.addWidget(self.prompt_stat, 0, 0)
        grid.addWidget(self.accept_stat, 0, 1)
        grid.addWidget(self.tokens_stat, 1, 0)
        grid.addWidget(self.clients_stat, 1, 1)
        grid.setHorizontalSpacing(24)
        head.addLayout(grid)

        card = QFrame()
        card.setObjectName("card")
        card_lay = QVBoxLayout(card)
        card_lay.addLayout(head)
        card_lay.addWidget(self.chart, 1)

        # Try it
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("Try it: type a message for the model, then press Send (Ctrl+Enter)")
        self.prompt.setMaximumHeight(70)
        self.prompt.setAccessibleName("Prompt")
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(1, 8192)
        self.max_tokens.setValue(256)
        self.max_tokens.setPrefix("max ")
        self.max_tokens.setSuffix(" tokens")
        self.send_btn = QPushButton(icon("send"), "Send")
        self.send_btn.setObjectName("sendButton")
        self.send_btn.setToolTip("Send the message to the running server and stream the reply (Ctrl+Enter)")
        self.send_btn.setEnabled(False)
        self.stop_btn = QPushButton("Stop reply")
        self.stop_btn.setEnabled(False)
        self.reply = QPlainTextEdit()
        self.reply.setReadOnly(True)
        self.reply.setPlaceholderText("The reply streams here.")
        self.reply.setAccessibleName("Reply")
        self.reply_status = QLabel("")
        self.reply_status.setObjectName("muted")
        try_row = QHBoxLayout()
        try_row.addWidget(self.prompt, 1)
        btns = QVBoxLayout()
        btns.addWidget(self.send_btn)
        btns.addWidget(self.stop_btn)
        btns.addWidget(self.max_tokens)
        try_row.addLayout(btns)

        lay = QVBoxLayout(self)
        lay.addWidget(card, 2)
        title = QLabel("Try it")
        title.setObjectName("sectionTitle")
        lay.addWidget(title)
        lay.addLayout(try_row)
        lay.addWidget(self.reply, 2)
        lay.addWidget(self.reply_status)
        self.send_btn.clicked.connect(self._send)
        self.stop_btn.clicked.connect(self.cancel_prompt)

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self._send()
            return
        super().keyPressEvent(event)

    def _send(self) -> None:
        text = self.prompt.toPlainText().strip()
        if text and self.send_btn.isEnabled():
            self.reply.clear()
            self._own_active = True
            self.reply_status.setText("sending…")
            self.send_btn.setEnabled(False)
            self.stop_btn.setEnabled(True)
            self.send_prompt.emit(text, self.max_tokens.value())

    def set_server_ready(self, ready: bool) -> None:
        self.send_btn.setEnabled(ready)
        if not ready:
            self.stop_btn.setEnabled(False)

    def reset(self) -> None:
        self.own_speed = self.all_speed = None
        self.big.setText("–")
        self.source.setText("waiting for the first reply")
        for s in (self.prompt_stat, self.accept_stat, self.tokens_stat, self.clients_stat):
            s.set("–")
        self.chart.clear()

    # --- data in ------------------------------------------------------------------------------
    def show_own(self, speed: Speed | None) -> None:
        """Per-token timings of the launcher's own streaming request."""
        if speed is None or speed.decode_tps is None:
            return
        self.own_speed = speed
        self.big.setText(f"{speed.decode_tps:.1f}")
        self.source.setText("this app's request · from the server's timings")
        self._details(speed)
        self.chart.add(speed.decode_tps)

    def show_clients(self, speed: Speed) -> None:
        """Counter deltas from /metrics: every client's traffic, including other programs."""
        self.all_speed = speed
        if speed.decode_tps is not None:
            self.clients_stat.set(f"{speed.decode_tps:.1f}")
        if self._own_active or time.monotonic() - self._own_finished_at < OWN_TRAFFIC_GRACE_S:
            return  # the counters moved because of this app's own request, already shown from its timings
        if speed.decode_tps is not None:
            self.big.setText(f"{speed.decode_tps:.1f}")
            self.source.setText("all clients · from /metrics")
            self.chart.add(speed.decode_tps)
        self._details(speed)

    def _details(self, speed: Speed) -> None:
        if speed.prompt_tps is not None:
            self.prompt_stat.set(f"{speed.prompt_tps:.1f}")
        acc = speed.acceptance
        self.accept_stat.set(f"{acc * 100:.1f} %" if acc is not None else "no drafts")
        if speed.predicted_n is not None:
            self.tokens_stat.set(f"{speed.predicted_n:,}")

    def append_reply(self, text: str) -> None:
        if text:
            cursor = self.reply.textCursor()
            cursor.movePosition(cursor.MoveOperation.End)
            cursor.insertText(text)
            self.reply.setTextCursor(cursor)

    def reply_finished(self, speed: Speed | None, usage: dict | None, error: str) -> None:
        self._own_active = False
        self._own_finished_at = time.monotonic()
        self.stop_btn.setEnabled(False)
        self.send_btn.setEnabled(True)
        if error:
            self.reply_status.setText(f"error: {error}")
            return
        if speed is not None:
            self.show_own(speed)
        parts = []
        if speed is not None and speed.decode_tps is not None:
            parts.append(f"{speed.decode_tps:.1f} decode t/s")
        if usage:
            parts.append(f"{usage.get('completion_tokens', 0)} tokens")
        if speed is not None and speed.acceptance is not None:
            parts.append(f"{speed.acceptance * 100:.0f}% of {speed.draft_n} drafted tokens accepted")
        self.reply_status.setText(" · ".join(parts) + " (from the server's timings)")
