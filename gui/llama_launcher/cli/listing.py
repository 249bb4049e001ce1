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


def cmd_models(args: argparse.Namespace) -> int:
    folders = [Path(d) for d in args.dirs]
    for d in folders:
        if not d.exists():
            raise UsageError(f"folder not found: {d}")
    result = scan(folders, include_defaults=not args.dirs or args.defaults)
    if args.json:
        print_json({"models": [m.to_dict() for m in result.models],
                     "projectors": [p.to_dict() for p in result.projectors],
                     "folders": [{"path": str(f.path), "source": f.source} for f in result.folders],
                     "notes": result.notes})
        return 0
    rows = []
    for m in result.models:
        if m.error:
            rows.append([m.file_name, "-", "-", "-", fmt_size(m.file_size) if m.file_size else "-", "-", "",
                         "error: " + explain_text(m.error)])
        else:
            rows.append([m.name, m.architecture or "-", format_params(m.parameters), m.quantization or "-",
                         fmt_size(m.file_size), str(m.context_length or "-"), "MTP" if m.is_mtp else "", m.folder])
    if rows:
        print(table(rows, ["name", "arch", "params", "quant", "size", "context", "", "folder / error"]))
    else:
        say("no models found")
    for note in result.notes:
        say(f"note: {note}")
    return 0


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
