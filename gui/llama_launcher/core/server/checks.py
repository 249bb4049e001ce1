"""Checks of what a ready server really offers, run once after it reports ready.

A green suite once hid that every chat message reached the model as the literal word "gemma"
(a built-in template name read as Jinja text). So the launcher asks the server itself: it renders
a probe conversation through ``/apply-template`` and looks for the probe's words in the prompt the
model would receive; a template that drops them is reported in one line, whatever its origin (the
launcher's fallback or the model's own file). It also asks ``GET /`` whether a web UI is served,
because builds made offline have none and a dead "Open web UI" button is a small lie.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass

from llama_launcher.core.server.chat_client import json_headers


@dataclass(frozen=True)
class TemplateCheck:
    ok: bool | None  # None: this server cannot tell (no /apply-template)
    message: str
    rendered: str = ""


@dataclass(frozen=True)
class ServerChecks:
    template: TemplateCheck
    web_ui: bool
    web_ui_reason: str


def check_template(base_url: str, api_key: str | None = None, timeout: float = 10.0) -> TemplateCheck:
    """Render a probe message with the server's chat template; ok when the message survives."""
    word = "probe" + secrets.token_hex(4)
    text = f"Please repeat the word {word}."
    body = json.dumps({"messages": [{"role": "user", "content": text}]}).encode()
    req = urllib.request.Request(base_url + "/apply-template", data=body, headers=json_headers(api_key), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = json.loads(resp.read(1_000_000))
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return TemplateCheck(None, "this llama-server cannot show its chat template (no /apply-template)")
        return TemplateCheck(None, f"the chat template could not be checked (HTTP {exc.code})")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return TemplateCheck(None, f"the chat template could not be checked ({getattr(exc, 'reason', exc)})")
    rendered = data.get("prompt") if isinstance(data, dict) else None
    if not isinstance(rendered, str):
        return TemplateCheck(None, "the chat template could not be checked (no prompt in the answer)")
    if word in rendered:
        return TemplateCheck(True, "your messages reach the model", rendered)
    shown = " ".join(rendered.split())
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return TemplateCheck(False, f"the chat template drops your messages: a test message rendered as {shown!r}; "
                                "set a chat template in the extra arguments (--chat-template NAME or "
                                "--chat-template-file FILE)", rendered)


def has_web_ui(base_url: str, api_key: str | None = None, timeout: float = 5.0) -> tuple[bool, str]:
    """(served, why not): ``GET /`` answers an HTML page when the build includes the web UI."""
    req = urllib.request.Request(base_url + "/", headers=json_headers(api_key))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            kind = resp.headers.get("Content-Type", "")
            head = resp.read(2048).lower()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False, "this llama-server was built without its web UI (GET / answers 404)"
        return False, f"the web UI did not answer (HTTP {exc.code})"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"the web UI did not answer ({getattr(exc, 'reason', exc)})"
    if "html" in kind or b"<html" in head or b"<!doctype" in head:
        return True, ""
    return False, "the server's front page is not a web UI"


def run_checks(base_url: str, api_key: str | None = None) -> ServerChecks:
    served, why = has_web_ui(base_url, api_key)
    return ServerChecks(check_template(base_url, api_key), served, why)
