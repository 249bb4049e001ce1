"""A minimal OpenAI-compatible client for the launcher's own requests (bench, tune, "Try it").

Standard library only; every response passes through :func:`speed_stats.backfill_usage`, and
streaming asks for ``timings_per_token`` so live numbers come from the server, not a stopwatch.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from llama_launcher.core.server.speed_stats import Speed, backfill_usage, speed_from_timings
from llama_launcher.core.state.errors import UserFacing


class ChatError(UserFacing):
    """One line for the user."""


@dataclass
class ChatResult:
    text: str
    usage: dict[str, Any] | None
    timings: dict[str, Any] | None
    speed: Speed | None
    raw: dict[str, Any] = field(default_factory=dict)
    stopped: bool = False  # the user stopped the reply; text and timings are what arrived until then


def json_headers(api_key: str | None, accept: str | None = None) -> dict[str, str]:
    """Headers for a JSON request to llama-server; with a key, the ``Authorization: Bearer`` it checks."""
    headers = {"Content-Type": "application/json"}
    if accept:
        headers["Accept"] = accept
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _request(base_url: str, path: str, payload: dict[str, Any], api_key: str | None, timeout: float):
    req = urllib.request.Request(base_url + path, data=json.dumps(payload).encode(), headers=json_headers(api_key),
                                 method="POST")
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        body = exc.read(500).decode("utf-8", "replace") if exc.fp else ""
        raise ChatError(f"the server answered {exc.code}: {body.strip()[:200]}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ChatError(f"cannot reach the server at {base_url}: {getattr(exc, 'reason', exc)}") from exc


def chat(base_url: str, messages: list[dict[str, str]], max_tokens: int = 128, temperature: float = 0.0,
         api_key: str | None = None, timeout: float = 300.0, extra: dict[str, Any] | None = None) -> ChatResult:
    payload: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens, "temperature": temperature,
                               "stream": False, **(extra or {})}
    with _request(base_url, "/v1/chat/completions", payload, api_key, timeout) as resp:
        try:
            data = json.loads(resp.read())
        except ValueError as exc:
            raise ChatError("the server sent a response that is not JSON") from exc
    usage = backfill_usage(data)
    text = ""
    try:
        text = data["choices"][0]["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        pass
    timings = data.get("timings") if isinstance(data.get("timings"), dict) else None
    return ChatResult(text, usage, timings, speed_from_timings(timings), data)


def iter_sse(lines: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    """Decode ``data: {...}`` server-sent events; stops at ``data: [DONE]``."""
    for raw in lines:
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith("data:"):
            continue
        body = line[5:].strip()
        if body == "[DONE]":
            return
        try:
            event = json.loads(body)
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event


class StreamHandle:
    """Stops a streaming request from any thread, at once: the socket is shut down under the reader.

    llama-server notices the closed connection and stops generating, so Stop really stops the work
    (a flag checked between chunks would let a slow token or a stalled read run on)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._conn: http.client.HTTPConnection | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def _attach(self, conn: http.client.HTTPConnection | None) -> None:
        with self._lock:
            self._conn = conn
            if conn is not None and self._cancelled:
                self._shutdown(conn)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            if self._conn is not None:
                self._shutdown(self._conn)

    @staticmethod
    def _shutdown(conn: http.client.HTTPConnection) -> None:
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _open_stream(base_url: str, path: str, payload: dict[str, Any], api_key: str | None, timeout: float,
                 handle: StreamHandle) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    url = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=timeout)
    headers = json_headers(api_key, accept="text/event-stream")
    try:
        conn.connect()
        handle._attach(conn)
        conn.request("POST", path, body=json.dumps(payload).encode(), headers=headers)
        resp = conn.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        if handle.cancelled:
            raise StreamStopped() from exc
        raise ChatError(f"cannot reach the server at {base_url}: {exc}") from exc
    if resp.status != 200:
        body = resp.read(500).decode("utf-8", "replace")
        conn.close()
        raise ChatError(f"the server answered {resp.status}: {body.strip()[:200]}")
    return conn, resp


class StreamStopped(Exception):
    """The user stopped the reply (internal: turned into a result marked ``stopped``)."""


def chat_stream(base_url: str, messages: list[dict[str, str]], on_delta: Callable[[str, Speed | None], None],
                max_tokens: int = 256, temperature: float = 0.0, api_key: str | None = None,
                timeout: float = 300.0, handle: StreamHandle | None = None,
                completion: bool = False, extra: dict[str, Any] | None = None) -> ChatResult:
    """Stream a reply; ``on_delta(text, speed)`` per chunk with the server's per-token timings.

    ``completion`` sends the last message as plain text to ``/completion`` instead of the chat
    endpoint: what a base model (no chat template) was trained on. ``handle.cancel()`` stops the
    reply at once; the result then has ``stopped`` set and the text received so far."""
    handle = handle or StreamHandle()
    if completion:
        path = "/completion"
        payload: dict[str, Any] = {"prompt": messages[-1]["content"], "n_predict": max_tokens,
                                   "temperature": temperature, "stream": True, "timings_per_token": True}
    else:
        path = "/v1/chat/completions"
        payload = {"messages": messages, "max_tokens": max_tokens, "temperature": temperature, "stream": True,
                   "timings_per_token": True, "stream_options": {"include_usage": True}}
    payload.update(extra or {})
    parts: list[str] = []
    last_timings: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    stopped = False
    try:
        conn, resp = _open_stream(base_url, path, payload, api_key, timeout, handle)
    except StreamStopped:
        conn, resp, stopped = None, None, True
    try:
        if resp is not None:
            for event in iter_sse(iter(resp.readline, b"")):
                if handle.cancelled:
                    stopped = True
                    break
                delta = ""
                if completion:
                    content = event.get("content")
                    delta = content if isinstance(content, str) else ""
                else:
                    try:
                        delta = event["choices"][0]["delta"].get("content") or ""
                    except (KeyError, IndexError, TypeError, AttributeError):
                        pass
                if isinstance(event.get("timings"), dict):
                    last_timings = event["timings"]
                if isinstance(event.get("usage"), dict):
                    usage = event["usage"]
                if delta:
                    parts.append(delta)
                on_delta(delta, speed_from_timings(last_timings))
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if not handle.cancelled:
            raise ChatError(f"the reply was cut off: {exc}") from exc
        stopped = True
    finally:
        handle._attach(None)
        if conn is not None:
            conn.close()
    stopped = stopped or handle.cancelled
    final = {"usage": usage, "timings": last_timings}
    usage = backfill_usage(final)
    result = ChatResult("".join(parts), usage, last_timings, speed_from_timings(last_timings), final)
    result.stopped = stopped
    return result
