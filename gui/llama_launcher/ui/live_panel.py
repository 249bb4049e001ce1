"""The live panel: decode t/s as a big number, a chart of replies and their table, from the server's own numbers.

Two sources, shown apart: the launcher's own requests ("Try it") report ``timings`` per token, and
every client's traffic (editors, chat apps) is read from ``/metrics`` counter deltas, its prompt and
its reply joined (core/server/activity.py). A wall-clock speed is never shown. The chart draws one
bar per reply and says how many and over what time; the table is llama-swap's activity table, and
the line under Try it's reply is LM Studio's tok/s under each message.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from llama_launcher.core.plan.speculative import SpeculativeDecision
from llama_launcher.core.server.activity import COLUMNS, OTHERS, TRY_IT, Activity
from llama_launcher.core.server.speed_stats import Speed
from llama_launcher.core.speculative.acceptance import DraftPositions
from llama_launcher.core.speculative.methods import BY_ID
from llama_launcher.ui.resources import icon

OWN_TRAFFIC_GRACE_S = 2.5  # a /metrics poll (1 s) may still count the tail of our own request
CHART_BARS = 30  # the chart shows the latest replies; the table keeps more
OTHERS_COLOUR = QColor("#7c3aed")


class SpeedChart(QWidget):
    """One bar per reply, its height the reply's decode t/s (no QtCharts: it is not in PySide6-Essentials).

    The caption says what is drawn (core/server/activity.py: "the last 7 replies, over 3 min")."""

    def __init__(self, activity: Activity, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.activity = activity
        self.setMinimumHeight(120)
        self.setAccessibleName("Decode tokens per second of each reply")

    def bars(self) -> list[tuple[str, float]]:
        return self.activity.bars()[-CHART_BARS:]

    def caption(self) -> str:
        return self.activity.caption()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        rect = QRectF(self.rect()).adjusted(40, 8, -8, -20)
        p.setPen(QPen(pal.color(QPalette.ColorRole.Mid), 1))
        p.drawRect(rect)
        bars = self.bars()
        if not bars:
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, "no replies yet: send one with Try it, or from any client")
            return
        top = max(v for _, v in bars) * 1.15 or 1.0
        p.drawText(QRectF(0, rect.top() - 6, 36, 14), Qt.AlignmentFlag.AlignRight, f"{top:.0f}")
        p.drawText(QRectF(0, rect.bottom() - 8, 36, 14), Qt.AlignmentFlag.AlignRight, "0")
        slot = rect.width() / max(len(bars), 8)
        for i, (source, value) in enumerate(bars):
            h = rect.height() * value / top
            colour = pal.color(QPalette.ColorRole.Highlight) if source == TRY_IT else OTHERS_COLOUR
            p.fillRect(QRectF(rect.left() + i * slot + slot * 0.15, rect.bottom() - h, slot * 0.7, h), colour)
        p.setPen(QPen(pal.color(QPalette.ColorRole.Text)))
        x = rect.left()
        fm = p.fontMetrics()
        title = "decode t/s per reply:"
        p.drawText(QRectF(x, rect.bottom() + 3, rect.width(), 15), Qt.AlignmentFlag.AlignLeft, title)
        x += fm.horizontalAdvance(title) + 8
        for source in (TRY_IT, OTHERS):  # the legend names only what is drawn, each in its bar's colour
            if not any(s == source for s, _ in bars):
                continue
            colour = pal.color(QPalette.ColorRole.Highlight) if source == TRY_IT else OTHERS_COLOUR
            p.fillRect(QRectF(x, rect.bottom() + 6, 9, 9), colour)
            p.drawText(QRectF(x + 13, rect.bottom() + 3, rect.width(), 15), Qt.AlignmentFlag.AlignLeft, source)
            x += 13 + fm.horizontalAdvance(source) + 12


class ReplyView(QPlainTextEdit):
    """Try it's reply: it asks for little height, so the speed line under it (LM Studio's tok/s under the
    message) stays in view at 1280×820 and 1024×640; it grows with the window."""

    def sizeHint(self) -> QSize:
        return QSize(300, 80)

    def minimumSizeHint(self) -> QSize:
        return QSize(200, 60)


class ActivityTable(QTreeWidget):
    """The replies, newest first: when, which client, prompt and reply with their speeds, drafts accepted."""

    COLUMNS = list(COLUMNS)

    def __init__(self, activity: Activity, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.activity = activity
        self.setHeaderLabels(self.COLUMNS)
        self.setRootIsDecorated(False)
        self.setAlternatingRowColors(True)
        self.setMinimumHeight(80)
        self.setMaximumHeight(130)
        self.setAccessibleName("Replies")

    def refresh(self) -> None:
        self.clear()
        for row in self.activity.rows():
            self.addTopLevelItem(QTreeWidgetItem(row))
        for col in range(len(self.COLUMNS)):
            self.resizeColumnToContents(col)

    def refresh_latest(self) -> None:
        """Only the newest row changed (a streaming reply): no rebuild per token."""
        rows = self.activity.rows()
        item = self.topLevelItem(0)
        if item is None or self.topLevelItemCount() != len(rows):
            self.refresh()
            return
        for col, text in enumerate(rows[0]):
            item.setText(col, text)


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
        self.activity = Activity()
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
        self.source.setWordWrap(True)
        self.prompt_stat = Stat("prompt tokens/s", "Prompt processing speed (prefill), from the server's timings")
        self.accept_stat = Stat("draft acceptance", "Share of drafted tokens the model accepted (speculative decoding)")
        self.tokens_stat = Stat("tokens generated", "Tokens generated in the last reply")
        self.clients_stat = Stat("all clients (t/s)", "Decode speed of every client's traffic, from /metrics")
        self.chart = SpeedChart(self.activity)
        self.caption = QLabel(self.activity.caption())  # what the chart shows, in words (core/server/activity.py)
        self.caption.setObjectName("muted")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.caption.setWordWrap(True)
        self.table = ActivityTable(self.activity)

        head = QHBoxLayout()
        numbers = QVBoxLayout()  # the number, its unit under it, where it came from: narrow enough for 1024 px
        numbers.setSpacing(0)
        numbers.addWidget(self.big)
        numbers.addWidget(unit)
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
        card_lay.addWidget(self.caption)
        card_lay.addWidget(self.table)
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
        self.reply = ReplyView()
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
                               f"({positions.steps_words()})")
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
        self.activity.clear()
        self._activity_changed()

    # --- data in ------------------------------------------------------------------------------
    def show_own(self, speed: Speed | None) -> None:
        """Per-token timings of the launcher's own streaming request."""
        if speed is None or speed.decode_tps is None:
            return
        self.own_speed = speed
        self.big.setText(f"{speed.decode_tps:.1f}")
        self.source.setText("this app's request · from the server's timings")
        self._details(speed)
        self.activity.add(TRY_IT, speed, streaming=self._own_active)
        self._activity_changed(latest_only=self._own_active)

    def show_clients(self, speed: Speed) -> bool:
        """Counter deltas from /metrics: every client's traffic, including other programs.

        Returns True when the delta was other clients' traffic (not this app's own reply)."""
        if speed.decode_tps is not None:
            self.clients_stat.set(f"{speed.decode_tps:.1f}")
        if self._own_active or time.monotonic() - self._own_finished_at < OWN_TRAFFIC_GRACE_S:
            return False  # the counters moved because of this app's own request, already shown from its timings
        if speed.decode_tps is not None:
            self.big.setText(f"{speed.decode_tps:.1f}")
            self.source.setText("other clients · from the server's log" if speed.source == "log" else
                                "other clients · from /metrics")
            self.activity.add(OTHERS, speed)
            self._activity_changed()
        self._details(speed)
        return True

    def show_busy(self, words: str) -> None:  # words: core/server/activity.py OtherClients.in_progress
        """Another program's reply is being written (the server's requests gauge): say so where the numbers go."""
        if self._own_active or time.monotonic() - self._own_finished_at < OWN_TRAFFIC_GRACE_S:
            return  # that is this app's own request
        if words:
            self.source.setText(words)
        elif self.source.text().startswith("other clients: "):
            self.source.setText("other clients · from /metrics" if self.activity.replies else "waiting for the first reply")

    def _activity_changed(self, latest_only: bool = False) -> None:
        self.chart.update()
        self.caption.setText(self.activity.caption())
        if latest_only:
            self.table.refresh_latest()
        else:
            self.table.refresh()

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
            self.activity.end_streaming()
            self._activity_changed()
            return
        if speed is not None:
            self.show_own(speed)  # the reply's final numbers: its row stops streaming
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
