"""``llama-launcher download REPO[:QUANT]``: the window's "Get models…" download without the window.

It lists the repository's quants with a fit verdict each for this machine (their headers read remotely),
picks the recommended one unless QUANT names another, and downloads it with its split parts, its MTP head
(unless ``--no-mtp-head``) and its projector (unless ``--no-mmproj``): into the Hugging Face cache, or
``--to FOLDER``. A progress bar on a terminal; ``--json`` prints one JSON object per line (the plan,
progress, then the result). Ctrl+C keeps what arrived: the same command resumes it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
from pathlib import Path
from typing import Any

from llama_launcher.cli.inputs import load_hardware, probe_binary
from llama_launcher.cli.output import RunError, UsageError, say, table
from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.hub.client import HubClient, HubError, token_source
from llama_launcher.core.hub.download import DownloadError, Progress, Transfer, plan_items, size_text
from llama_launcher.core.hub.fit import PLACE_WORDS
from llama_launcher.core.hub.repo_report import RepoReport, files_for, judge_repo
from llama_launcher.core.llama_server.discovery import find_server

REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def parse_target(text: str) -> tuple[str, str | None]:
    repo, _, quant = text.partition(":")
    if not REPO_RE.match(repo):
        raise UsageError(f"{text!r} is not a repository: write OWNER/NAME, optionally :QUANT (e.g. "
                         "unsloth/Qwen3-8B-GGUF:Q4_K_M)")
    return repo, quant or None


def _emit(args: argparse.Namespace, event: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(event), flush=True)


def _show_report(args: argparse.Namespace, report: RepoReport) -> None:
    if args.json:
        _emit(args, {"event": "repo", **report.to_dict()})
        return
    rows = [[("* " if q.group.quant == report.recommended else "  ") + q.group.quant, size_text(q.group.size),
             PLACE_WORDS[q.verdict.place], f"{q.verdict.context:,}" if q.verdict.context else "-",
             f"{q.verdict.needed_mib:,} MiB" if q.verdict.needed_mib else "-"] for q in report.quants]
    print(table(rows, ["quant", "size", "fit here", "context", "memory"]))  # table() made each cell safe
    say(f"recommended: {report.why}" if report.recommended else report.why)


class _Bar:
    """A one-line progress bar on a terminal; plain lines every 10% elsewhere."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.tty = args, sys.stderr.isatty()
        self.last_tenth = -1

    def __call__(self, p: Progress) -> None:
        if self.args.json:
            _emit(self.args, p.to_dict())
            return
        if self.tty:
            filled = int(p.fraction * 30)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {p.text()[:90]:<90}")
            sys.stderr.flush()
        elif int(p.fraction * 10) != self.last_tenth:
            self.last_tenth = int(p.fraction * 10)
            say(p.text(), file=sys.stderr, flush=True)

    def end(self) -> None:
        if self.tty and not self.args.json:
            sys.stderr.write("\n")


def _described(file: str) -> Hardware:
    try:
        return Hardware.load(file)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_download(args: argparse.Namespace) -> int:
    repo_id, quant = parse_target(args.target)
    binary = args.binary or (c.path if (c := find_server()) is not None else None)
    caps = probe_binary(binary) if binary else None
    # a described machine is judged as described (its GPUs are not replaced by this binary's device list)
    hw = load_hardware(None, binary) if not args.hardware else _described(args.hardware)
    client = HubClient()
    if not args.json:
        say(f"reading {repo_id} on {client.endpoint} (token: {token_source()})", file=sys.stderr, flush=True)
    try:
        report = judge_repo(client, repo_id, hw, caps, args.ctx)
    except HubError as exc:
        raise RunError(str(exc)) from None
    _show_report(args, report)
    chosen = quant or report.recommended
    if chosen is None:
        raise RunError("no quant fits this machine; name one to download it anyway: REPO:QUANT")
    try:
        files = files_for(report, chosen, mtp_head=not args.no_mtp_head, projector=not args.no_mmproj)
    except HubError as exc:
        raise UsageError(str(exc)) from None
    folder = Path(args.to).expanduser().resolve() if args.to else None
    items = plan_items(repo_id, files, None if folder else client.cache_dir, folder)
    total = sum(it.file.size for it in items)
    _emit(args, {"event": "plan", "quant": chosen, "files": [{"path": it.file.path, "role": it.role,
                 "size": it.file.size} for it in items], "total": total,
                 "destination": str(folder) if folder else client.cache_dir})
    if not args.json:
        say(f"{chosen}: " + ", ".join(f"{it.file.name} ({it.role}, {size_text(it.file.size)})" for it in items)
            + f" into {folder or client.cache_dir}", file=sys.stderr, flush=True)
    if args.dry_run:
        return 0
    bar = _Bar(args)
    cancel = threading.Event()
    t = Transfer(client, repo_id, report.listing.commit, items, bar, cancel, stall_s=args.stall,
                 note=lambda text: say(f"note: {text}", file=sys.stderr, flush=True))
    try:
        placed = t.run()
    except KeyboardInterrupt:
        cancel.set()
        bar.end()
        raise RunError(f"interrupted: {size_text(t.done)} of {size_text(t.total)} kept; run the same command to "
                       "resume") from None
    except DownloadError as exc:
        bar.end()
        raise RunError(str(exc)) from None
    bar.end()
    _emit(args, {"event": "done", "path": str(placed[0]), "files": [str(p) for p in placed]})
    if not args.json:
        say(f"ready: {placed[0]}")
        say(f"launch it with: llama-launcher serve {placed[0]}")
    return 0
