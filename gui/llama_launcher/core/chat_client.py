"""A minimal OpenAI-compatible client for the launcher's own requests (bench, tune, "Try it").

Standard library only; every response passes through :func:`speed_stats.backfill_usage`, and
streaming asks for ``timings_per_token`` so live numbers come from the server, not a stopwatch.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from llama_launcher.core.speed_stats import Speed, backfill_usage, speed_from_timings


class ChatError(Exception):
    """One line for the user."""


@dataclass
class ChatResult:
    text: str
    usage: dict[str, Any] | None
    timings: dict[str, Any] | None
    speed: Speed | None
    raw: dict[str, Any] = field(default_factory=dict)


def _request(base_url: str, path: str, payload: dict[str, Any], api_key: str | None, timeout: float):
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    req = urllib.request.Request(base_url + path, data=json.dumps(payload).encode(), headers=headers, method="POST")
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


def chat_stream(base_url: str, messages: list[dict[str, str]], on_delta: Callable[[str, Speed | None], None],
                max_tokens: int = 256, temperature: float = 0.0, api_key: str | None = None,
                timeout: float = 300.0, cancelled: Callable[[], bool] = lambda: False) -> ChatResult:
    """Stream a reply; ``on_delta(text, speed)`` per chunk with the server's per-token timings."""
    payload = {"messages": messages, "max_tokens": max_tokens, "temperature": temperature, "stream": True,
               "timings_per_token": True, "stream_options": {"include_usage": True}}
    parts: list[str] = []
    last_timings: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    with _request(base_url, "/v1/chat/completions", payload, api_key, timeout) as resp:
        for event in iter_sse(iter(resp.readline, b"")):
            if cancelled():
                break
            delta = ""
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
    final = {"usage": usage, "timings": last_timings}
    usage = backfill_usage(final)
    return ChatResult("".join(parts), usage, last_timings, speed_from_timings(last_timings), final)
