"""One llama-server for as long as a block of work runs: started, ready, and always stopped.

The window's launch, ``serve``, ``bench`` and ``tune`` all run their servers through
:class:`~llama_launcher.core.server.process.ServerRunner`; this is the shape the measuring commands
need around it (a ``with`` block that raises when the server does not come up, and that a cancel
from any thread ends at once).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from llama_launcher.core.server.failure_reasons import FailureReason
from llama_launcher.core.server.process import RunnerEvents, ServerRunner, ServerState
from llama_launcher.core.state.cancel import CancelToken


class SessionFailed(Exception):
    """The server did not become ready; the message is the runner's reason."""


class SessionCancelled(Exception):
    """A cancel arrived while the server was starting."""


class ServerSession:
    def __init__(self, argv: list[str], env: dict[str, str] | None = None, ready_timeout: float = 300.0,
                 on_line: Callable[[str], None] | None = None, token: CancelToken | None = None) -> None:
        events = RunnerEvents(on_line=on_line) if on_line is not None else RunnerEvents()
        self.runner = ServerRunner(list(argv), events, ready_timeout=ready_timeout, env=dict(env or {}))
        self.token = token or CancelToken()
        self.time_to_ready = 0.0
        self._unregister: Callable[[], None] = lambda: None

    def __enter__(self) -> ServerSession:
        t0 = time.monotonic()
        if self.token.cancelled:
            raise SessionCancelled()
        self.runner.start()
        self._unregister = self.token.register(lambda: self.runner.stop(grace=0.5))  # now, or from now on
        state = self.runner.wait_until((ServerState.READY, ServerState.FAILED, ServerState.STOPPED),
                                       self.runner.ready_timeout + 30)
        if self.token.cancelled:
            self.__exit__()
            raise SessionCancelled()
        if state is not ServerState.READY:
            reason = self.runner.reason or FailureReason("timeout", "llama-server did not become ready")
            self.__exit__()
            raise SessionFailed(reason.message)
        self.time_to_ready = time.monotonic() - t0
        return self

    def __exit__(self, *exc: object) -> None:
        self.runner.stop()
        self._unregister()
