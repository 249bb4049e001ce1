"""Does ``tune`` cost a fraction of a full sweep and still pick the fastest setting?

    python benchmarks/bench_tune.py [--models demo,mtp] [--tokens 192] [--threads 2]

For each model, in one run on one machine: ``sweep`` (every candidate at full length, the
reference) and ``tune`` (short screening, draft-length ladder, confirmation only when the leaders
are within the noise). Reported: wall time of each and their ratio (goal: tune <= 50% of the sweep),
and the decode t/s *the sweep* measured for the setting tune picked against the sweep's best
(goal: the same setting, or within 3%). The order alternates between models so that a slow
moment of the shared machine does not always hit the same arm.

The MTP model is a synthetic mimo2 MTP model made for this benchmark, much larger than the tests'
1 MB one (about 70M parameters, f32), so that a decode step costs real work and speeds are stable.
When tune picks a setting the sweep did not measure (the chain at another draft length), that
setting is measured the sweep's way in the same run, so the comparison is like for like.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from llama_launcher.core.llama_server import probe as binary_probe  # noqa: E402
from llama_launcher.core.llama_server.devices import detect_with_binary  # noqa: E402
from llama_launcher.core.llama_server.discovery import find_server  # noqa: E402
from llama_launcher.core.models.catalog import demo_model_path  # noqa: E402
from llama_launcher.core.models.model_info import read_model_info  # noqa: E402
from llama_launcher.core.settings.launch import PlanSettings  # noqa: E402
from llama_launcher.core.state.cancel import CancelToken  # noqa: E402
from llama_launcher.core.tuning.tune import TuneCandidate, TuneOutcome, _TuneRun, sweep, tune  # noqa: E402


def mtp_model(folder: Path) -> Path:
    from synthetic_mtp import write_mimo2_model

    return write_mimo2_model(folder / "bench-mimo2-MTP.gguf", with_mtp=True, hidden=768, n_trunk=8, ff=3072,
                             name="bench mimo2 MTP")


def sweep_tps(outcome: TuneOutcome, methods: tuple[str, ...], n: int | None) -> float | None:
    for r in outcome.rows:
        if r.candidate.methods == methods and (r.candidate.draft_n_max == n or not n):
            return r.mean_tps
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="demo,mtp")
    ap.add_argument("--tokens", type=int, default=192)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    cand = find_server()
    if cand is None:
        print("no llama-server: run 'llama-launcher get-server'", file=sys.stderr)
        return 1
    caps = binary_probe.probe(cand.path)
    hw = detect_with_binary(cand.path)
    tmp = Path(tempfile.mkdtemp(prefix="bench-tune-"))
    paths = {"demo": demo_model_path(), "mtp": mtp_model(tmp)}
    report = []
    for i, name in enumerate(args.models.split(",")):
        model = read_model_info(paths.get(name, Path(name)))
        base = PlanSettings(threads=args.threads)
        arms: dict[str, TuneOutcome] = {}
        order = ("sweep", "tune") if i % 2 == 0 else ("tune", "sweep")
        for arm in order:
            run = sweep if arm == "sweep" else tune
            print(f"{model.name}: {arm} ...", file=sys.stderr, flush=True)
            arms[arm] = run(cand.path, model, hw, caps, base, [], tokens=args.tokens,
                            log=lambda s: print("  " + s, file=sys.stderr, flush=True))
        full, fast = arms["sweep"], arms["tune"]
        best = max(full.rows, key=lambda r: r.mean_tps)
        picked = fast.choice
        picked_in_sweep = sweep_tps(full, picked.methods, picked.draft_n_max)
        if picked_in_sweep is None:  # measure tune's pick the sweep's way (full length, its own server)
            extra = _TuneRun(cand.path, model, hw, caps, base, [], lambda s: None, lambda p: None, None,
                            CancelToken(), 1)
            picked_in_sweep = extra.run(TuneCandidate(picked.methods, picked.draft_n_max), args.tokens).mean_tps
        row = {
            "model": model.name,
            "sweep_s": round(full.wall_s, 1), "sweep_servers": full.servers,
            "tune_s": round(fast.wall_s, 1), "tune_servers": fast.servers,
            "time_ratio": round(fast.wall_s / full.wall_s, 3),
            "sweep_best": best.label(), "sweep_best_tps": round(best.mean_tps, 1),
            "tune_pick": picked.label(), "tune_note": picked.note, "tune_margin": round(picked.margin, 3),
            "pick_tps_in_sweep": round(picked_in_sweep, 1) if picked_in_sweep else None,
            "pick_vs_best": round(picked_in_sweep / best.mean_tps, 3) if picked_in_sweep else None,
        }
        row["goals_met"] = bool(row["time_ratio"] <= 0.5 and row["pick_vs_best"] and row["pick_vs_best"] >= 0.97)
        report.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps({"machine": f"{platform.processor() or platform.machine()}, {hw.logical_cores} threads",
                      "llama_server": caps.version_line, "tokens": args.tokens, "threads": args.threads,
                      "results": report}, indent=1))
    return 0 if all(r["goals_met"] for r in report) else 1


if __name__ == "__main__":
    sys.exit(main())
