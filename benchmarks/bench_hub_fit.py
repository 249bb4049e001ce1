"""Deciding which quant fits, from the Hub, without downloading: bytes fetched and time for a 4-quant repo.

    python benchmarks/bench_hub_fit.py [--rounds 5]

A local fake Hub (tests/fake_hub.py: huggingface_hub's answer shapes, a CDN answering Range requests)
serves a 14B model in Q2_K, Q4_K_M, Q6_K (split in two parts, in a Q6_K/ folder) and Q8_0, 4-14 GB each,
plus an MTP head and a projector. ``judge_repo`` lists the repository, reads every quant's header with
HTTP Range requests and judges each for a 24 GB GPU. The bytes are counted at the server; the baseline
is what downloading those files whole would fetch. Vocabularies: 32k tokens (Llama 2, Mistral), and
Qwen's 151,936 without and with its ~150k BPE merges (the largest headers in common use).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from llama_launcher.core.host.hardware import GPU, Hardware  # noqa: E402
from llama_launcher.core.hub.client import HubClient  # noqa: E402
from llama_launcher.core.hub.repo_report import judge_repo  # noqa: E402

from fake_hub import FakeHub, big_repo  # noqa: E402

HW = Hardware("x86-64", 65536, 60000, False, [GPU("RTX 4090", "CUDA", 24564, 24000)])


def measure(vocab: int, merges: bool, rounds: int) -> dict:
    hub = FakeHub()
    hub.repos = {"big/Big-14B-GGUF": big_repo(vocab, merges)}
    hub.start()
    try:
        client = HubClient(endpoint=hub.url, cache_dir="/nonexistent-cache", timeout=30)
        judge_repo(client, "big/Big-14B-GGUF", HW)  # warm the HTTP session once
        times, served = [], []
        for _ in range(rounds):
            hub.reset_counts()
            t = time.perf_counter()
            report = judge_repo(client, "big/Big-14B-GGUF", HW)
            times.append(time.perf_counter() - t)
            served.append(hub.total_served())
        whole = sum(q.group.size for q in report.quants)
        header = len(hub.repos["big/Big-14B-GGUF"].files["Big-14B-Q8_0.gguf"].head)
        return {"vocab": vocab, "merges": merges, "header": header, "seconds": statistics.median(times), "served": max(served), "whole": whole,
                "requests": len(hub.ranges) // rounds if rounds else 0, "recommended": report.recommended}
    finally:
        hub.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    for vocab, merges in ((32000, False), (151936, False), (151936, True)):
        r = measure(vocab, merges, args.rounds)
        print(f"vocabulary {r['vocab']:>7,}{' + BPE merges' if merges else ''} ({r['header'] / 1e6:.1f} MB header): decided in {r['seconds'] * 1000:.0f} ms (median of {args.rounds}), "
              f"{r['served'] / 1e6:.2f} MB served of {r['whole'] / 1e9:.1f} GB in the files "
              f"({r['whole'] / r['served']:,.0f}x less than downloading them), recommended {r['recommended']}; "
              f"goal: < 10 MB and < 1 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
