"""``serve``: run llama-server in the foreground, as the window's Launch does.

A start that speculation crashed is retried once without it (``core/plan/fallback.py``) and said so;
Auto remembers it for this model and binary. While the server runs, ``/metrics`` is read every few
seconds and the acceptance per draft position is printed when it changes, with the draft length it
implies. ``--json`` prints one JSON object per line (``event``: starting, ready, fallback, acceptance,
stopped, failed) on stdout; the server's log goes to stderr either way.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from llama_launcher.cli.inputs import plan_inputs, replan
from llama_launcher.cli.output import RunError, print_notices, say
from llama_launcher.core.host import network
from llama_launcher.core.memory.evidence import learn_after_launch
from llama_launcher.core.plan.fallback import Fallback, fallback_for, without
from llama_launcher.core.plan.planner import Plan
from llama_launcher.core.server import checks as server_checks
from llama_launcher.core.server import orphan_guard
from llama_launcher.core.server.process import RunnerEvents, ServerEvent, ServerRunner, ServerState
from llama_launcher.core.speculative import fallback_store
from llama_launcher.core.speculative.acceptance import DraftPositions, positions_from_metrics
from llama_launcher.core.state.command_line import shown_command_line

METRICS_EVERY_S = 3.0
MAX_METRICS_BYTES = 1 << 20


class _Out:
    """Text lines, or one JSON object per line with ``--json`` (notes and warnings: stderr in both)."""

    def __init__(self, as_json: bool) -> None:
        self.json = as_json

    def event(self, event: str, text: str | tuple[str, ...], **data: Any) -> None:
        if self.json:
            print(json.dumps({"event": event, **data}, default=str), flush=True)
            return
        for line in (text,) if isinstance(text, str) else text:
            if line:
                say(line, flush=True)

    def note(self, text: str) -> None:
        say(text, file=sys.stderr, flush=True)


@dataclass
class _Run:
    runner: ServerRunner
    ready_seen: bool = False


def read_positions(base_url: str, api_key: str | None) -> DraftPositions | None:
    """The server's acceptance per draft position now (None: no /metrics, or nothing drafted yet)."""
    req = urllib.request.Request(base_url + "/metrics",
                                 headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
    try:
        with urllib.request.urlopen(req, timeout=2.0) as resp:  # noqa: S310 - our own server on 127.0.0.1
            text = resp.read(MAX_METRICS_BYTES).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, TimeoutError, ValueError):
        return None
    return positions_from_metrics(text)


def cmd_serve(args: argparse.Namespace) -> int:
    inputs, plan = plan_inputs(args)
    settings = inputs.settings
    if not network.port_is_free(settings.port):
        raise RunError(f"{network.port_in_use_message(settings.port)}; pass --port with another port (e.g. --port "
                       f"{network.next_free_port(settings.port)}) or stop that program")
    out = _Out(args.json)
    for w in plan.warnings:
        say(f"warning: {w}", file=sys.stderr)
    done, stop_requested = threading.Event(), threading.Event()

    def handle(signum, frame) -> None:
        stop_requested.set()
        done.set()

    signal.signal(signal.SIGINT, handle)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, handle)
    run = _serve_once(args, out, plan, settings, done, stop_requested, sweep=True)
    fallback = None if stop_requested.is_set() else _fallback(run, plan)
    if fallback is not None:
        out.event("fallback", f"note: {fallback.message()}", message=fallback.message(),
                  turned_off=list(fallback.methods), blamed=list(fallback.blamed), reason=fallback.reason,
                  evidence=fallback.evidence, log=fallback.log)
        if args.json:
            out.note(f"note: {fallback.message()}")
        fallback_store.remember(inputs.model.path, inputs.binary, list(fallback.blamed), fallback.reason,
                                fallback.evidence)
        settings = without(settings, fallback)
        plan = replan(inputs, settings)
        done.clear()
        run = _serve_once(args, out, plan, settings, done, stop_requested, sweep=False)
    return _finish(args, out, inputs, plan, run, stop_requested.is_set())


def _fallback(run: _Run, plan: Plan) -> Fallback | None:
    r = run.runner
    if r.state is not ServerState.FAILED:
        return None
    returncode = r.proc.returncode if r.proc is not None else None
    return fallback_for(plan, run.ready_seen, r.reason, list(r.history), returncode, r.log_path)


def _serve_once(args: argparse.Namespace, out: _Out, plan: Plan, settings, done: threading.Event,
                stop_requested: threading.Event, sweep: bool) -> _Run:
    """Start one server and stay with it until it ends or Ctrl+C; what happened."""
    ready = threading.Event()

    def on_state(event: ServerEvent) -> None:
        # runs in the runner's threads, under its lock: only flag it, the main thread does the talking
        if event.state is ServerState.READY:
            ready.set()
        elif event.state.ended:
            done.set()

    def on_line(line: str) -> None:
        if not args.quiet:
            say(line, file=sys.stderr, flush=True)

    runner = ServerRunner(plan.argv, RunnerEvents(on_state, on_line), ready_timeout=args.ready_timeout, env=plan.env)
    line = shown_command_line(plan.redacted_argv())
    out.event("starting", (f"starting: {line}", f"endpoint: {plan.endpoint}",
                           f"speculative: {plan.speculative.summary}"), command=line, argv=plan.redacted_argv(),
              endpoint=plan.endpoint, speculative=plan.speculative.summary)
    run = _Run(runner)
    runner.start()
    if sweep:
        # servers left behind by an earlier, killed launcher (macOS has no parent-death signal);
        # swept after our own start so that time to ready does not pay for it
        orphan_guard.sweep(lambda s: say(f"note: {s}", file=sys.stderr))
    print_notices()  # what could not be saved (a read-only or full home) is said now, not at exit
    last_poll, shown = 0.0, None
    while not done.wait(0.2):
        print_notices()
        if ready.is_set() and not run.ready_seen:
            run.ready_seen = True
            _say_ready(out, plan, settings, runner)
        if run.ready_seen and time.monotonic() - last_poll >= METRICS_EVERY_S and plan.speculative.types:
            last_poll = time.monotonic()
            shown = _acceptance(out, plan, runner, settings.api_key, shown)
    run.ready_seen = run.ready_seen or ready.is_set()
    if stop_requested.is_set() and runner.state.running:
        say("stopping llama-server ...", file=sys.stderr, flush=True)
        runner.stop()
        say("stopped", file=sys.stderr, flush=True)
    return run


def _say_ready(out: _Out, plan: Plan, settings, runner: ServerRunner) -> None:
    checks = server_checks.run_checks(runner.base_url, settings.api_key)
    ui = f"web UI at {plan.endpoint}/" if checks.web_ui else f"no web UI: {checks.web_ui_reason}"
    out.event("ready", f"ready: {plan.endpoint}  (OpenAI-compatible API at {plan.endpoint}/v1; {ui})",
              endpoint=plan.endpoint, api=f"{plan.endpoint}/v1", web_ui=checks.web_ui)
    if settings.lan:
        urls = network.lan_urls(settings.port) or [f"http://<this computer's address>:{settings.port}/v1"]
        say("LAN access is on; other devices use " + ", ".join(urls), flush=True)
        say(f"API key: {settings.api_key}" + (f" (kept in {settings.api_key_file})"
                                                 if settings.api_key_file else ""), flush=True)
    if checks.template.ok is False:
        say(f"warning: {checks.template.message}", file=sys.stderr, flush=True)


def _acceptance(out: _Out, plan: Plan, runner: ServerRunner, api_key: str | None,
                shown: DraftPositions | None) -> DraftPositions | None:
    """Say the acceptance per draft position when it changed since it was last said."""
    now = read_positions(runner.base_url, api_key)
    if now is None or not now.steps or (shown is not None and now.steps == shown.steps):
        return shown
    n = plan.speculative.draft_n_max
    advice = now.advice(n)
    out.event("acceptance", f"acceptance by draft position: {now.compact(n)} ({now.steps_words()})"
              + (f" — {advice}" if advice else ""), **now.to_dict(n))
    return now


def _finish(args: argparse.Namespace, out: _Out, inputs, plan: Plan, run: _Run, stopped: bool) -> int:
    runner = run.runner
    learned = learn_after_launch(inputs.model, inputs.caps.build_number, plan.memory, runner.log_path,
                                 list(runner.history))
    if learned is not None:
        say(f"note: memory learned from this launch: {learned.describe()}", file=sys.stderr)
    if stopped or runner.state is not ServerState.FAILED or runner.reason is None:
        out.event("stopped", "", log=str(runner.log_path) if runner.log_path else None)
        return 0
    message = runner.reason.message
    if runner.reason.code == "port_in_use":
        message = f"{network.port_in_use_message(inputs.settings.port)}; pass --port with another port (e.g. " \
                  f"--port {network.next_free_port(inputs.settings.port)}) or stop that program"
    out.event("failed", "", message=message, code=runner.reason.code, evidence=runner.reason.evidence,
              log=str(runner.log_path) if runner.log_path else None)
    say(f"error: {message}", file=sys.stderr)
    for ev in runner.reason.evidence:
        say(f"  | {ev}", file=sys.stderr)
    if runner.log_path:
        say(f"  full log: {runner.log_path}", file=sys.stderr)
    return 1
