"""Memory estimate vs llama-server's own figures: the demo model and the synthetic MTP model.

    python benchmarks/bench_memory_estimate.py [--binary PATH] [--contexts 4096,32768,131072]

For each configuration one real server is started with the planner's argv (``-t 1``, no
generation) and stopped; its buffer lines (the parts of its exit breakdown, plus the MTP draft
context's own buffers) are the reference. Printed as a Markdown table, each estimate with its
ratio to the server's figure, measured in the same run:

- launcher: this estimate (weights + KV + compute + backend + MTP draft);
- old: the estimate before issue 14 (file size + KV + 256 MiB);
- llama.cpp: llama-fit-params' projection moved to the server's settings (when the tool is beside
  the binary), and ``raw``, the tool's own figure (one slot, a ubatch of logits, no draft).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from llama_launcher.core.host.hardware import Hardware, cpu_name  # noqa: E402
from llama_launcher.core.host.network import free_port  # noqa: E402
from llama_launcher.core.llama_server.discovery import find_server  # noqa: E402
from llama_launcher.core.llama_server.probe import probe  # noqa: E402
from llama_launcher.core.memory.breakdown import parse_server_memory  # noqa: E402
from llama_launcher.core.memory.estimate import MIB, MemoryEvidence, kv_bytes  # noqa: E402
from llama_launcher.core.memory.evidence import read_log_lines  # noqa: E402
from llama_launcher.core.memory.fit_projection import project, tool_beside  # noqa: E402
from llama_launcher.core.models.catalog import demo_model_path  # noqa: E402
from llama_launcher.core.models.model_info import ModelInfo, read_model_info  # noqa: E402
from llama_launcher.core.plan.planner import plan_launch  # noqa: E402
from llama_launcher.core.server.process import ServerRunner
from llama_launcher.core.settings.launch import PlanSettings  # noqa: E402

CPU = Hardware("bench CPU", 65536, 60000, False, [])


def old_estimate(model: ModelInfo, ctx: int, mtp: bool) -> int:
    return model.file_size // MIB + kv_bytes(model, ctx, include_mtp=mtp) // MIB + 256


def run(binary: str, model: ModelInfo, ctx: int, fa: str, mtp: str, ngram: str) -> dict:
    caps = probe(binary)
    settings = PlanSettings(port=free_port(), threads=1, ctx=ctx, mtp=mtp, ngram_mod=ngram,
                            extra_args=f"-fa {fa} --no-warmup")
    plan = plan_launch(binary, model, CPU, caps, settings)
    assert plan.memory is not None
    row: dict = {"launcher": plan.memory.launcher_mib, "old": old_estimate(model, ctx, mtp == "on"),
                 "parts": plan.memory.parts_text()}
    tool = tool_beside(binary)
    if tool is not None:
        proj = project(tool, model.path, (ctx,), plan.memory.launch)
        with_tool = plan_launch(binary, model, CPU, caps, settings, memory_evidence=MemoryEvidence(projection=proj))
        assert with_tool.memory is not None
        row["llama.cpp"] = with_tool.memory.llama_cpp_mib
        row["raw"] = proj.mib_at(ctx)
    r = ServerRunner(plan.argv, ready_timeout=300)
    r.start()
    try:
        if r.wait_until(("ready", "failed", "stopped"), 330) != "ready":
            raise SystemExit(f"the server did not start: {r.reason}")
    finally:
        r.stop()
    mem = parse_server_memory(read_log_lines(r.log_path or ""))
    row["server"] = mem.total_mib()
    return row


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary")
    ap.add_argument("--contexts", default="4096,32768,131072")
    args = ap.parse_args()
    cand = find_server(args.binary)
    if cand is None:
        raise SystemExit("no llama-server: run 'llama-launcher get-server'")
    from synthetic_mtp import write_mimo2_model

    contexts = [int(c) for c in args.contexts.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        mtp_path = write_mimo2_model(Path(tmp) / "tiny-mimo2-MTP.gguf", with_mtp=True)
        cases = [("demo (gemma3 270M Q4_K_M), ngram-mod", read_model_info(demo_model_path()), "off", "auto")]
        synth = read_model_info(mtp_path)
        cases += [("synthetic mimo2, MTP off", synth, "off", "off"), ("synthetic mimo2, MTP on", synth, "on", "off")]
        print(f"llama-server: {cand.path}; {cpu_name()}, {platform.system()} {platform.machine()}\n")
        has_tool = tool_beside(cand.path) is not None
        head = "| model | context | FA | server MiB | launcher MiB (ratio) | old MiB (ratio) |"
        head += " llama.cpp MiB (ratio) | raw llama-fit-params MiB |" if has_tool else ""
        print(head)
        print("|" + "---|" * (head.count("|") - 1))
        for label, model, mtp, ngram in cases:
            for ctx in contexts:
                for fa in ("on", "off"):
                    row = run(cand.path, model, ctx, fa, mtp, ngram)
                    real = row["server"]
                    line = (f"| {label} | {ctx:,} | {fa} | {real:,.1f} | {row['launcher']:,} ({row['launcher'] / real:.2f}) "
                            f"| {row['old']:,} ({row['old'] / real:.2f}) |")
                    if has_tool:
                        line += f" {row['llama.cpp']:,} ({row['llama.cpp'] / real:.2f}) | {row['raw']:,} |"
                    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
