"""Does the launcher cost speed? Decode t/s and time to ready through `serve` vs the same argv run directly.

    python benchmarks/bench_serve_overhead.py [MODEL] [--rounds N]

Both arms use the argv that `serve` prints, alternate (serve, direct, serve, direct, ...) to spread
machine noise, and read decode t/s from the server's timings (temperature 0, same prompt).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from llama_launcher.core.host.network import free_port
from llama_launcher.core.models.catalog import demo_model_path
from llama_launcher.core.server.chat_client import chat
from llama_launcher.core.tuning.measure import CODE_PROMPT

TOKENS = 128


def decode_tps(base: str, n: int) -> list[float]:
    chat(base, [{"role": "user", "content": "hi"}], max_tokens=4)
    return [chat(base, [{"role": "user", "content": CODE_PROMPT}], max_tokens=TOKENS,
                 extra={"cache_prompt": False}).timings["predicted_per_second"] for _ in range(n)]


def via_serve(model: str, port: int, threads: int) -> tuple[float, list[float], list[str]]:
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "llama_launcher", "serve", model, "--port", str(port), "-t",
                          str(threads), "--quiet", "--mtp", "off", "--ngram-mod", "off"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    argv: list[str] = []
    assert p.stdout is not None
    for line in p.stdout:
        if line.startswith("starting: "):
            argv = line[len("starting: "):].split()
        if line.startswith("ready:"):
            break
    ready = time.perf_counter() - t0
    try:
        speeds = decode_tps(f"http://127.0.0.1:{port}", 3)
    finally:
        p.terminate()
        p.wait(30)
    return ready, speeds, argv


def direct(argv: list[str], port: int) -> tuple[float, list[float]]:
    argv = list(argv)
    argv[argv.index("--port") + 1] = str(port)
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            with urllib.request.urlopen(base + "/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        time.sleep(0.05)
    ready = time.perf_counter() - t0
    try:
        speeds = decode_tps(base, 3)
    finally:
        p.terminate()
        p.wait(30)
    return ready, speeds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=str(demo_model_path()))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    s_ready, s_tps, d_ready, d_tps = [], [], [], []
    argv: list[str] = []
    for _ in range(args.rounds):
        r, t, argv = via_serve(args.model, free_port(), args.threads)
        s_ready.append(r)
        s_tps += t
        r, t = direct(argv, free_port())
        d_ready.append(r)
        d_tps += t
    res = {"machine": platform.processor() or platform.machine(), "model": Path(args.model).name,
           "serve_decode_tps": statistics.median(s_tps), "direct_decode_tps": statistics.median(d_tps),
           "ratio": statistics.median(s_tps) / statistics.median(d_tps),
           "serve_ready_s": statistics.median(s_ready), "direct_ready_s": statistics.median(d_ready)}
    res["ready_difference_s"] = res["serve_ready_s"] - res["direct_ready_s"]
    print(json.dumps(res, indent=1))
    print(f"| decode t/s through serve vs direct | {res['serve_decode_tps']:.1f} vs {res['direct_decode_tps']:.1f} | "
          f"ratio {res['ratio']:.3f} |")
    print(f"| time to ready | serve {res['serve_ready_s']:.2f} s vs direct {res['direct_ready_s']:.2f} s | "
          f"difference {res['ready_difference_s']:+.2f} s |")


if __name__ == "__main__":
    main()
