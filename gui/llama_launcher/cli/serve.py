"""``serve``: run llama-server in the foreground, as the window's Launch does."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from llama_launcher.cli.inputs import make_plan_with_inputs
from llama_launcher.cli.output import RunError, print_notices, say
from llama_launcher.core.host import network
from llama_launcher.core.memory.evidence import learn_after_launch
from llama_launcher.core.server import checks as server_checks
from llama_launcher.core.server import orphan_guard
from llama_launcher.core.server.process import RunnerEvents, ServerEvent, ServerRunner, ServerState
from llama_launcher.core.state.command_line import shown_command_line


def cmd_serve(args: argparse.Namespace) -> int:
    _, caps, model, settings, plan = make_plan_with_inputs(args)
    if not network.port_is_free(settings.port):
        raise RunError(f"{network.port_in_use_message(settings.port)}; pass --port with another port (e.g. --port "
                       f"{network.next_free_port(settings.port)}) or stop that program")
    for w in plan.warnings:
        say(f"warning: {w}", file=sys.stderr)
    done = threading.Event()
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
    say(f"starting: {shown_command_line(plan.redacted_argv())}", flush=True)
    say(f"endpoint: {plan.endpoint}", flush=True)
    stop_requested = threading.Event()

    def handle(signum, frame) -> None:
        stop_requested.set()
        done.set()

    signal.signal(signal.SIGINT, handle)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, handle)
    runner.start()
    # servers left behind by an earlier, killed launcher (macOS has no parent-death signal);
    # swept after our own start so that time to ready does not pay for it
    orphan_guard.sweep(lambda s: say(f"note: {s}", file=sys.stderr))
    print_notices()  # what could not be saved (a read-only or full home) is said now, not at exit
    reported = False
    while not done.wait(0.2):
        print_notices()
        if ready.is_set() and not reported:
            reported = True
            checks = server_checks.run_checks(runner.base_url, settings.api_key)
            ui = f"web UI at {plan.endpoint}/" if checks.web_ui else f"no web UI: {checks.web_ui_reason}"
            say(f"ready: {plan.endpoint}  (OpenAI-compatible API at {plan.endpoint}/v1; {ui})", flush=True)
            if settings.lan:
                urls = network.lan_urls(settings.port) or [f"http://<this computer's address>:{settings.port}/v1"]
                say("LAN access is on; other devices use " + ", ".join(urls), flush=True)
                say(f"API key: {settings.api_key}" + (f" (kept in {settings.api_key_file})"
                                                         if settings.api_key_file else ""), flush=True)
            if checks.template.ok is False:
                say(f"warning: {checks.template.message}", file=sys.stderr, flush=True)
    if stop_requested.is_set():
        say("stopping llama-server ...", file=sys.stderr, flush=True)
        runner.stop()
        say("stopped", file=sys.stderr, flush=True)
        _learn_memory(model, caps, plan, runner)
        return 0
    _learn_memory(model, caps, plan, runner)
    if runner.state is ServerState.FAILED and runner.reason is not None:
        message = runner.reason.message
        if runner.reason.code == "port_in_use":
            message = f"{network.port_in_use_message(settings.port)}; pass --port with another port (e.g. " \
                      f"--port {network.next_free_port(settings.port)}) or stop that program"
        say(f"error: {message}", file=sys.stderr)
        for ev in runner.reason.evidence:
            say(f"  | {ev}", file=sys.stderr)
        if runner.log_path:
            say(f"  full log: {runner.log_path}", file=sys.stderr)
        return 1
    return 0


def _learn_memory(model, caps, plan, runner) -> None:
    """Keep what the server reported about its memory for the next plan of this model."""
    learned = learn_after_launch(model, caps.build_number, plan.memory, runner.log_path, list(runner.history))
    if learned is not None:
        say(f"note: memory learned from this launch: {learned.describe()}", file=sys.stderr)
