"""What a chat client gets from a server the launcher planned: the message reaches the model.

Driven with the real ``openai`` package, the client users point at the endpoint. The check that
failed silently on an earlier build (every message rendered as the word "gemma") is the first one.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import openai
import pytest

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.host.network import free_port
from llama_launcher.core.llama_server.probe import probe
from llama_launcher.core.models.model_info import read_model_info
from llama_launcher.core.plan.planner import plan_launch
from llama_launcher.core.server.checks import check_template, has_web_ui, run_checks
from llama_launcher.core.server.process import ServerRunner, ServerState
from llama_launcher.core.settings.launch import PlanSettings

pytestmark = pytest.mark.integration
CPU = Hardware("test CPU", 16384, 12000, False, [])
MESSAGE = "Say hello in French."


def serve(runners: list, binary: str, model: Path, extra: str = "") -> tuple[ServerRunner, object]:
    plan = plan_launch(binary, read_model_info(model), CPU, probe(binary),
                       PlanSettings(port=free_port(), threads=2, extra_args=extra, ctx=4096))
    r = ServerRunner(plan.argv, ready_timeout=240)
    runners.append(r)
    r.start()
    assert r.wait_until((ServerState.READY, ServerState.FAILED), 270) is ServerState.READY, (r.reason, plan.argv)
    return r, plan


def apply_template(base_url: str, text: str) -> str:
    req = urllib.request.Request(base_url + "/apply-template", method="POST",
                                 data=json.dumps({"messages": [{"role": "user", "content": text}]}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["prompt"]


@pytest.fixture(params=["demo", "mtp"])
def server(request, llama_server: str, demo_model: Path, mtp_models: dict, runners: list):
    model = demo_model if request.param == "demo" else mtp_models["mtp"]
    return serve(runners, llama_server, model)


def test_the_users_message_reaches_the_model(server) -> None:
    runner, plan = server
    prompt = apply_template(runner.base_url, MESSAGE)
    assert MESSAGE in prompt, prompt  # not the template's name, not an empty turn
    assert check_template(runner.base_url).ok is True
    client = openai.OpenAI(base_url=runner.base_url + "/v1", api_key="not-needed")
    short = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi."}], max_tokens=4)
    long = client.chat.completions.create(model="m", max_tokens=4, messages=[
        {"role": "user", "content": "Hi. " + "Please tell me about the weather in Paris in spring. " * 5}])
    assert short.usage is not None and long.usage is not None
    # the prompt the model saw grows with the message: the message really is in it
    assert long.usage.prompt_tokens >= short.usage.prompt_tokens + 40


def test_openai_client_chat_stream_and_models(server) -> None:
    runner, plan = server
    client = openai.OpenAI(base_url=runner.base_url + "/v1", api_key="not-needed")
    models = client.models.list()
    assert len(models.data) == 1 and models.data[0].id
    reply = client.chat.completions.create(model=models.data[0].id, max_tokens=16,
                                           messages=[{"role": "user", "content": MESSAGE}])
    assert reply.choices[0].message.content and reply.usage.completion_tokens > 0
    chunks = list(client.chat.completions.create(model=models.data[0].id, max_tokens=16, stream=True,
                                                 stream_options={"include_usage": True},
                                                 messages=[{"role": "user", "content": MESSAGE}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = [c.usage for c in chunks if c.usage is not None]
    assert text and usage and usage[-1].completion_tokens == 16


def test_a_template_that_drops_messages_is_reported(llama_server: str, mtp_models: dict, runners: list,
                                                    tmp_path: Path) -> None:
    broken = tmp_path / "broken.jinja"
    broken.write_text("{{ 'You are helpful.' }}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    runner, _ = serve(runners, llama_server, mtp_models["mtp"], f"--chat-template-file {broken}")
    checks = run_checks(runner.base_url)
    assert checks.template.ok is False
    assert checks.template.message.startswith("the chat template drops your messages")


def test_the_web_ui_is_offered_only_when_served(llama_server: str, mtp_models: dict, runners: list) -> None:
    runner, _ = serve(runners, llama_server, mtp_models["mtp"])
    served, why = has_web_ui(runner.base_url)
    # the llama-server built for the tests is built offline, without its web UI
    assert served is False and "without its web UI" in why


def test_serve_says_what_exists_and_warns_about_a_broken_template(llama_server: str, mtp_models: dict,
                                                                  tmp_path: Path) -> None:
    broken = tmp_path / "broken.jinja"
    broken.write_text("{{ 'nothing of yours' }}")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_launcher", "serve", str(mtp_models["mtp"]), "--binary",
                             llama_server, "--threads", "1", "--port", str(port), "--quiet",
                             "--extra-args", f"--chat-template-file {broken}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        out = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            out += line
            if line.startswith("ready:") or proc.poll() is not None:
                break
        assert f"ready: http://127.0.0.1:{port}  (OpenAI-compatible API at http://127.0.0.1:{port}/v1; no web UI: " \
            in out, out
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert "warning: the chat template drops your messages" in err
    assert proc.returncode == 0
