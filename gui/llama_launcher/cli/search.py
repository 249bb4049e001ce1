"""``llama-launcher search QUERY``: GGUF repositories on the Hugging Face Hub, the window's "Get models…"
search without the window."""

from __future__ import annotations

import argparse

from llama_launcher.cli.output import RunError, UsageError, print_json, say, table
from llama_launcher.core.hub.client import HubClient, HubError


def cmd_search(args: argparse.Namespace) -> int:
    query = " ".join(args.query).strip()
    if not query:
        raise UsageError("say what to search for, e.g. 'llama-launcher search qwen3'")
    try:
        hits = HubClient().search(query, limit=args.limit)
    except HubError as exc:
        raise RunError(str(exc)) from None
    if args.json:
        print_json([h.to_dict() for h in hits])
        return 0
    if not hits:
        say(f"no GGUF repositories match {query!r}")
        return 0
    rows = [[h.repo_id, f"{h.downloads:,}", f"{h.likes:,}", h.updated or "-", f"gated ({h.gated})" if h.gated else ""]
            for h in hits]
    print(table(rows, ["repository", "downloads", "likes", "updated", ""]))  # table() made each cell safe
    say("download one with: llama-launcher download REPO[:QUANT]")
    return 0
