"""Try it: one streamed reply at a time from the running server, and Stop that really stops it.

Stop shuts the reply's socket from the GUI thread (core/server/chat_client.StreamHandle): the
server notices the closed connection and stops generating, and the reply ends as "stopped" with
the numbers of what was made so far.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from llama_launcher.core.server.chat_client import ChatResult, StreamHandle, chat_stream
from llama_launcher.core.server.speed_stats import Speed
from llama_launcher.ui.jobs import JobContext, JobRunner


class ChatController(QObject):
    delta = Signal(str, object)  # text, Speed (an empty one when the chunk had no timings)
    finished = Signal(object)  # ChatResult
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.last: ChatResult | None = None
        self._handle = StreamHandle()
        self._jobs = JobRunner("chat-worker", "the reply", self)
        self._jobs.progress.connect(lambda _run, d: self.delta.emit(d[0], d[1]))

    @property
    def busy(self) -> bool:
        return self._jobs.busy

    def send(self, base_url: str, prompt: str, api_key: str, max_tokens: int, completion: bool) -> None:
        handle = self._handle = StreamHandle()  # armed here: a Stop clicked before the request starts counts

        def reply(ctx: JobContext) -> ChatResult:
            return chat_stream(base_url, [{"role": "user", "content": prompt}],
                               on_delta=lambda text, speed: ctx.report((text, speed or Speed())),
                               max_tokens=max_tokens, temperature=0.7, api_key=api_key or None,
                               handle=handle, completion=completion)

        self._jobs.submit(reply, self._finished, self.failed.emit)

    def _finished(self, result: object) -> None:
        assert isinstance(result, ChatResult)
        self.last = result
        self.finished.emit(result)

    def stop(self) -> None:
        """Stop the reply at once (direct: closes its connection)."""
        self._handle.cancel()

    def shutdown(self) -> None:
        self.stop()
        self._jobs.shutdown()
