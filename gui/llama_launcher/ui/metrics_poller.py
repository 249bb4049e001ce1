"""Poll ``/metrics`` without blocking: QNetworkAccessManager + QTimer on the GUI thread's loop.

Counter deltas between two polls give every client's decode and prompt t/s (an editor's traffic
included), and the labelled per-position counters the acceptance of each draft position; the parsing
and the joining of a prompt's counters with its reply's live in core (speed_stats, activity.OtherClients,
speculative/acceptance) so they are tested without Qt.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, QUrl, Signal
from PySide6.QtNetwork import QNetworkAccessManager, QNetworkReply, QNetworkRequest

from llama_launcher.core.server.activity import OtherClients
from llama_launcher.core.server.speed_stats import parse_metrics
from llama_launcher.core.speculative.acceptance import positions_from_metrics

POLL_MS = 1000
MAX_BODY = 1 << 20  # a /metrics answer is a few KB; a hostile one is read this far


class MetricsPoller(QObject):
    speed = Signal(object)  # Speed from counter deltas
    busy = Signal(str)  # other clients' replies on the way, in words ('' when none)
    positions = Signal(object)  # DraftPositions: acceptance per draft position since the server started
    unavailable = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.nam = QNetworkAccessManager(self)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        self.base_url = ""
        self.api_key = ""
        self.traffic = OtherClients()
        self._inflight: QNetworkReply | None = None

    def start(self, base_url: str, api_key: str = "") -> None:
        self.base_url, self.api_key = base_url, api_key
        self.traffic.reset()
        self.timer.start()
        self.poll()

    def stop(self) -> None:
        self.timer.stop()
        if self._inflight is not None:
            self._inflight.abort()
            self._inflight = None

    def poll(self) -> None:
        if not self.base_url or self._inflight is not None:
            return
        req = QNetworkRequest(QUrl(self.base_url + "/metrics"))
        req.setTransferTimeout(3000)
        if self.api_key:
            req.setRawHeader(b"Authorization", f"Bearer {self.api_key}".encode())
        reply = self.nam.get(req)
        self._inflight = reply
        reply.finished.connect(lambda r=reply: self._done(r))

    def _done(self, reply: QNetworkReply) -> None:
        if self._inflight is reply:
            self._inflight = None
        reply.deleteLater()
        status = reply.attribute(QNetworkRequest.Attribute.HttpStatusCodeAttribute)
        if reply.error() != QNetworkReply.NetworkError.NoError or status != 200:
            # an aborted reply (stop) is closed: reading it would only warn "device not open"
            if status == 501:
                self.unavailable.emit("this server has no /metrics (started without --metrics)")
                self.timer.stop()
            return
        body = bytes(reply.read(MAX_BODY).data()).decode("utf-8", "replace")
        positions = positions_from_metrics(body)
        if positions is not None and positions.steps:
            self.positions.emit(positions)
        s = self.traffic.update(parse_metrics(body))
        if s is not None:
            self.speed.emit(s)
        self.busy.emit(self.traffic.in_progress())
