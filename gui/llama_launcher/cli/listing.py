"""``models``, ``hardware`` and ``probe``: what is on this computer, as the window's lists show it."""

from __future__ import annotations

import argparse
from pathlib import Path

from llama_launcher.cli.inputs import load_hardware, probe_binary, resolve_binary
from llama_launcher.cli.output import UsageError, fmt_size, print_json, say, table
from llama_launcher.core.llama_server.discovery import candidates, find_server
from llama_launcher.core.models.catalog import scan
from llama_launcher.core.models.file_problem import explain_text
from llama_launcher.core.models.model_info import format_params
from llama_launcher.core.models.sidecar import head_label, head_line, kind_of


def cmd_models(args: argparse.Namespace) -> int:
    folders = [Path(d) for d in args.dirs]
    for d in folders:
        if not d.exists():
            raise UsageError(f"folder not found: {d}")
    result = scan(folders, include_defaults=not args.dirs or args.defaults)
    if args.json:
        print_json({"models": [m.to_dict() for m in result.models],
                     "heads": [_head_dict(h, result.models) for h in result.heads],
                     "projectors": [p.to_dict() for p in result.projectors],
                     "folders": [{"path": str(f.path), "source": f.source} for f in result.folders],
                     "notes": result.notes})
        return 0
    rows = []
    heads = {h.path: h for h in result.heads}
    for m in result.models:
        if m.error:
            rows.append([m.file_name, "-", "-", "-", fmt_size(m.file_size) if m.file_size else "-", "-", "",
                         "error: " + explain_text(m.error)])
        else:
            tag = "MTP" if m.is_mtp or any(kind_of(heads[h]) in ("mtp", "gemma4-assistant") for h in m.heads) else ""
            rows.append([m.name, m.architecture or "-", format_params(m.parameters), m.quantization or "-",
                         fmt_size(m.file_size), str(m.context_length or "-"), tag, m.folder])
            # the heads that draft for it, under it: a head is not a model to launch
            rows += [_head_row(heads[h]) for h in m.heads if h in heads]
    if rows:
        print(table(rows, ["name", "arch", "params", "quant", "size", "context", "", "folder / error"]))
    else:
        say("no models found")
    for h in result.heads:
        if not any(h.path in m.heads for m in result.models):
            say(f"note: {head_line(h)} ({h.folder}) fits none of the models found; it is a head, not a model, and "
                "cannot run on its own")
    for note in result.notes:
        say(f"note: {note}")
    return 0


def _head_row(h) -> list[str]:
    return ["  └ " + h.file_name, head_label(kind_of(h)), format_params(h.parameters), h.quantization or "-",
            fmt_size(h.file_size), "-", "", "drafts for the model above (not launchable)"]


def _head_dict(head, models) -> dict:
    """A head in ``models --json``: its file, what it is, the models it drafts for (it is never launchable)."""
    return {**head.to_dict(), "kind": head_label(kind_of(head)), "shown_as": head_line(head),
            "drafts_for": [m.path for m in models if head.path in m.heads]}


def cmd_hardware(args: argparse.Namespace) -> int:
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
        print_json(data)
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
