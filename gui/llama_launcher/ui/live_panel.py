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

from llama_launcher.core.plan.speculative import SpeculativeDecision
from llama_launcher.core.server.speed_stats import Speed
from llama_launcher.core.speculative.acceptance import DraftPositions
from llama_launcher.core.speculative.methods import BY_ID
from llama_launcher.ui.resources import icon

CHART_POINTS = 180
OWN_TRAFFIC_GRACE_S = 2.5  # a /metrics poll (1 s) may still count the tail of our own request


IDLE_GAP_S = 3.0  # no tokens for this long: the line breaks instead of drawing a slope through the idle time


def segments(points: list[tuple[float, float]], gap: float = IDLE_GAP_S) -> list[list[tuple[float, float]]]:
    """Split (time, value) points where the server was idle, so each reply is its own stretch of line."""
    out: list[list[tuple[float, float]]] = []
    for pt in points:
        if not out or pt[0] - out[-1][-1][0] > gap:
            out.append([])
        out[-1].append(pt)
    return out


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
        dots: list[QPointF] = []
        for seg in segments(list(self.points)):
            for i, (t, v) in enumerate(seg):
                x = rect.left() + (rect.width() * (t - t0) / span if len(self.points) > 1 else rect.width())
                pt = QPointF(x, rect.bottom() - rect.height() * v / top)
                if i == 0:
                    path.moveTo(pt)
                else:
                    path.lineTo(pt)
            if len(seg) == 1:  # a reply too short for a line still shows
                dots.append(pt)
        p.setPen(QPen(pal.color(QPalette.ColorRole.Highlight), 2))
        p.drawPath(path)
        for pt in dots:
            p.drawEllipse(pt, 2.5, 2.5)
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
    tune_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.own_speed: Speed | None = None
        self._own_active = False
        self._own_finished_at = 0.0
        self.completion_mode = False  # a base model: Try it sends plain text to /completion
        self._streamed = 0
        self._ready = False
        lay = QVBoxLayout(self)
        lay.addWidget(self._speed_card(), 2)
        self._try_it(lay)
        self.setMinimumWidth(380)

    def _speed_card(self) -> QFrame:
        """The big decode t/s, the other numbers, the 'speculation is losing' line and the chart."""
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

        # "speculation is losing" (and the chat-template check): a line with a way out
        self.verdict = QLabel("")
        self.verdict.setObjectName("warnings")
        self.verdict.setWordWrap(True)
        self.verdict_tune = QPushButton(icon("tune"), "Tune…")
        self.verdict_tune.setToolTip("Stop the server and measure which setting is fastest on this machine")
        verdict_row = QHBoxLayout()
        verdict_row.addWidget(self.verdict, 1)
        verdict_row.addWidget(self.verdict_tune, 0, Qt.AlignmentFlag.AlignTop)
        self.verdict_box = QWidget()
        self.verdict_box.setLayout(verdict_row)
        verdict_row.setContentsMargins(0, 0, 0, 0)
        self.verdict_box.setVisible(False)

        # acceptance per draft position (/metrics), with the draft length it implies
        self.positions = QLabel("")
        self.positions.setObjectName("muted")
        self.positions.setWordWrap(True)
        self.positions.setAccessibleName("Acceptance by draft position")
        self.positions.setToolTip("The share of verification steps in which each drafted position was accepted, "
                                  "from llama-server's /metrics (every client's traffic since the server started)")
        self.positions_advice = QLabel("")
        self.positions_advice.setObjectName("warnings")
        self.positions_advice.setWordWrap(True)
        for lbl in (self.positions, self.positions_advice):
            lbl.setVisible(False)

        card = QFrame()
        card.setObjectName("card")
        card_lay = QVBoxLayout(card)
        card_lay.addLayout(head)
        card_lay.addWidget(self.positions)
        card_lay.addWidget(self.positions_advice)
        card_lay.addWidget(self.verdict_box)
        card_lay.addWidget(self.chart, 1)
        self.verdict_tune.clicked.connect(self.tune_requested)
        return card

    def _try_it(self, lay: QVBoxLayout) -> None:
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

        self.try_title = QLabel("Try it")
        self.try_title.setObjectName("sectionTitle")
        self.try_title.setWordWrap(True)
        lay.addWidget(self.try_title)
        lay.addLayout(try_row)
        lay.addWidget(self.reply, 2)
        lay.addWidget(self.reply_status)
        self.send_btn.clicked.connect(self._send)
        self.stop_btn.clicked.connect(self._stop)

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self._send()
            return
        super().keyPressEvent(event)

    def set_completion_mode(self, on: bool) -> None:
        """A base model has no chat template: Try it sends plain text completion, and says so."""
        self.completion_mode = on
        self.try_title.setText("Try it — plain text completion (base model: the text you type is continued)" if on
                               else "Try it")
        self.prompt.setPlaceholderText("Type the beginning of a text; the model continues it (Ctrl+Enter)" if on else
                                       "Try it: type a message for the model, then press Send (Ctrl+Enter)")

    def _send(self) -> None:
        text = self.prompt.toPlainText().strip()
        if text and self.send_btn.isEnabled():
            self.reply.clear()
            self._own_active = True
            self._streamed = 0
            self.reply_status.setText("sending…")
            self.send_btn.setEnabled(False)
            self.stop_btn.setEnabled(True)
            self.send_prompt.emit(text, self.max_tokens.value())

    def _stop(self) -> None:
        self.stop_btn.setEnabled(False)
        self.reply_status.setText("stopping…")
        self.cancel_prompt.emit()

    def show_warning(self, text: str) -> None:
        self.verdict.setText(f"⚠ {text}")
        self.verdict_tune.setVisible(False)
        self.verdict_box.setVisible(True)

    def show_verdict(self, verdict) -> None:
        """The live 'is speculation paying?' line; only a losing setting gets the Tune button."""
        if verdict is None or not verdict.losing:
            if self.verdict_tune.isVisible() or verdict is None:
                self.verdict_box.setVisible(False)
            return
        self.verdict.setText(f"⚠ {verdict.message}")
        self.verdict_tune.setVisible(True)
        self.verdict_box.setVisible(True)

    def show_metrics_unavailable(self, why: str) -> None:
        """Other clients' speed cannot be shown: say so where it would be."""
        self.clients_stat.set("–")
        self.clients_stat.setToolTip(f"Other clients' speed is not available: {why}")
        if self.source.text() == "waiting for the first reply":
            self.source.setText(f"waiting for the first reply (other clients' speed is not available: {why})")

    def show_positions(self, positions: DraftPositions, spec: SpeculativeDecision | None) -> None:
        """'accepted by draft position: 1: 67%  2: 38%  3: 25%  4: 13%' and what it implies (for a model
        drafter's draft length; ngram-mod's long drafts are cut by its own knobs)."""
        drafter = spec is not None and any(BY_ID[m].kind == "model" for m in spec.methods)
        draft_n_max = spec.draft_n_max if spec is not None and drafter else None
        self.positions.setText(f"accepted by draft position: {positions.compact(draft_n_max)} "
                               f"({positions.steps:,} steps)")
        self.positions.setVisible(True)
        advice = positions.advice(draft_n_max)
        self.positions_advice.setText(f"⚠ {advice}" if advice else "")
        self.positions_advice.setVisible(bool(advice))

    def set_server_ready(self, ready: bool) -> None:
        self._ready = ready
        self.send_btn.setEnabled(ready and not self._own_active)
        if not ready:
            self.stop_btn.setEnabled(False)

    def reset(self) -> None:
        """A new launch or another model: nothing of the last one's numbers or reply stays on screen."""
        self.verdict_box.setVisible(False)
        for lbl in (self.positions, self.positions_advice):
            lbl.setText("")
            lbl.setVisible(False)
        self.reply.clear()
        self.reply_status.setText("")
        self.own_speed = None
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

    def show_clients(self, speed: Speed) -> bool:
        """Counter deltas from /metrics: every client's traffic, including other programs.

        Returns True when the delta was other clients' traffic (not this app's own reply)."""
        if speed.decode_tps is not None:
            self.clients_stat.set(f"{speed.decode_tps:.1f}")
        if self._own_active or time.monotonic() - self._own_finished_at < OWN_TRAFFIC_GRACE_S:
            return False  # the counters moved because of this app's own request, already shown from its timings
        if speed.decode_tps is not None:
            self.big.setText(f"{speed.decode_tps:.1f}")
            self.source.setText("all clients · from the server's log" if speed.source == "log" else
                                "all clients · from /metrics")
            self.chart.add(speed.decode_tps)
        self._details(speed)
        return True

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
            self._streamed += 1
            if self._own_active and self.stop_btn.isEnabled():
                self.reply_status.setText(f"streaming… {self._streamed} tokens so far")

    def reply_finished(self, speed: Speed | None, usage: dict | None, error: str, stopped: bool = False) -> None:
        self._own_active = False
        self._own_finished_at = time.monotonic()
        self.stop_btn.setEnabled(False)
        self.send_btn.setEnabled(self._ready)
        if error:
            self.reply_status.setText(f"error: {error}")
            return
        if speed is not None:
            self.show_own(speed)
        parts = ["stopped"] if stopped else []
        if speed is not None and speed.decode_tps is not None:
            parts.append(f"{speed.decode_tps:.1f} decode t/s")
        tokens = (speed.predicted_n if speed is not None else None) if stopped else \
            (usage or {}).get("completion_tokens")
        if tokens is None and stopped:
            tokens = self._streamed
        if tokens is not None:
            parts.append(f"{tokens} tokens" + (" so far" if stopped else ""))
        if speed is not None and speed.acceptance is not None:
            parts.append(f"{speed.acceptance * 100:.0f}% of {speed.draft_n} drafted tokens accepted")
        self.reply_status.setText(" · ".join(parts) + " (from the server's timings)")
