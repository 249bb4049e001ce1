"""The worst hostile folder of issue 12: how long ``models`` takes on it, and its peak memory.

    python benchmarks/bench_hostile_folder.py [--splits 200] [--before PATH/TO/OLD/gui] [--limit 120]

The folder (tests/hostile_files.py) holds sparse 16 GiB files claiming 2^29 tensors, 2^30
metadata entries and an array of 2^30 strings, empty files named ``mNNN-00001-of-99999.gguf``,
a FIFO named ``x.gguf`` and a symlink to it, a broken symlink, a symlink loop and a folder deeper
than the scan's depth limit. Each arm runs ``llama-launcher models --json`` in a fresh process
that reports its own wall time and peak RSS. The baseline, measured in the same run by the same
code, is a folder of five ordinary small models: the ratio is what the hostile files add.
``--before`` also runs an older source tree on the same folder (stopped after ``--limit`` s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

CHILD = r"""
import io, json, resource, sys, time, contextlib
t = time.perf_counter()
from llama_launcher.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    rc = main(["models", "--json", sys.argv[1]])
elapsed = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
peak_mib = peak / 1024 / (1024 if sys.platform == "darwin" else 1)
data = json.loads(out.getvalue())
print(json.dumps({"rc": rc, "seconds": elapsed, "peak_mib": peak_mib, "json_bytes": len(out.getvalue()),
                  "models": len(data["models"]), "notes": len(data["notes"])}))
"""


def run_arm(gui: Path, folder: Path, home: Path, limit: float) -> dict:
    env = dict(os.environ, PYTHONPATH=str(gui), LLAMA_LAUNCHER_HOME=str(home))
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, str(folder)], env=env, capture_output=True,
                              text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return {"timed_out": True, "seconds": limit}
    if done.returncode != 0:
        return {"failed": done.stderr.strip().splitlines()[-1:] or ["?"]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def fmt(r: dict) -> str:
    if r.get("timed_out"):
        return f"> {r['seconds']:.0f} s (stopped)"
    if r.get("failed"):
        return f"failed: {r['failed'][0]}"
    return (f"{r['seconds']:.2f} s, peak RSS {r['peak_mib']:.0f} MiB, {r['json_bytes'] / 1e3:,.0f} kB of JSON, "
            f"{r['models']} entries, {r['notes']} notes")


def main() -> None:
    from gguf_factory import write_model
    from hostile_files import empty_split_parts, hostile_folder

    ap = argparse.ArgumentParser()
    ap.add_argument("--splits", type=int, default=200)
    ap.add_argument("--before", type=Path, help="an older gui/ folder to compare with")
    ap.add_argument("--limit", type=float, default=120.0)
    args = ap.parse_args()
    gui = HERE.parent / "gui"
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        normal = root / "normal"
        for i in range(5):
            write_model(normal / f"model-{i}.gguf", name=f"Model {i}", tokens=2000)
        hostile = hostile_folder(root / "hostile", splits=args.splits)
        for i in range(5):
            write_model(hostile / f"model-{i}.gguf", name=f"Model {i}", tokens=2000)
        base = run_arm(gui, normal, root / "home-base", args.limit)
        bad = run_arm(gui, hostile, root / "home-hostile", args.limit)
        print(f"| baseline: 5 small models | {fmt(base)} |")
        print(f"| hostile folder ({args.splits} split stubs, 3 sparse 16 GiB bombs, FIFO, links, loop, deep) "
              f"+ the same 5 models | {fmt(bad)} |")
        if "peak_mib" in base and "peak_mib" in bad:
            print(f"| hostile / baseline | time {bad['seconds'] / base['seconds']:.2f}x, "
                  f"peak memory {bad['peak_mib'] / base['peak_mib']:.2f}x |")
        if args.before:
            old = run_arm(args.before, hostile, root / "home-before", args.limit)
            print(f"| same hostile folder, code in {args.before} | {fmt(old)} |")
            stubs = root / "stubs-only"
            empty_split_parts(stubs, n=20)
            for label, tree in (("this code", gui), (str(args.before), args.before)):
                r = run_arm(tree, stubs, root / f"home-stubs-{len(label)}", args.limit)
                print(f"| 20 empty files named mNNN-00001-of-99999.gguf, {label} | {fmt(r)} |")


if __name__ == "__main__":
    main()
