"""``bench`` and ``tune``: measure speculative settings on this machine, from the server's timings."""

from __future__ import annotations

import argparse
import sys

from llama_launcher.cli.inputs import resolve_inputs
from llama_launcher.cli.output import RunError, UsageError, print_json, say, table
from llama_launcher.core.plan.flags import PlanError
from llama_launcher.core.speculative import fallback_store
from llama_launcher.core.tuning import store as tuning_store
from llama_launcher.core.tuning.bench import bench
from llama_launcher.core.tuning.measure import BenchError
from llama_launcher.core.tuning.tune import sweep, tune


def cmd_bench(args: argparse.Namespace) -> int:
    binary, caps, model, hw, settings, drafts = resolve_inputs(args)
    if args.tokens < 1 or args.runs < 1:
        raise UsageError("--tokens and --runs must be at least 1")
    tuned = tuning_store.lookup(model.path, caps.build_number) if args.spec == "auto" else None
    log = (lambda s: None) if args.json else (lambda s: say(s, file=sys.stderr, flush=True))
    try:
        result = bench(binary, model, hw, caps, settings, args.spec, args.prompt, args.tokens, args.runs,
                       log, tuned, drafts, fallback_store.avoided(model.path, binary))  # --draft-n-max is in settings
    except PlanError as exc:
        raise UsageError(str(exc)) from exc
    except BenchError as exc:
        raise RunError(str(exc)) from exc
    if args.json:
        print_json(result.to_dict())
        return 0
    acc = f"{result.acceptance * 100:.1f}%" if result.acceptance is not None else "-"
    print(table([[result.spec, str(result.draft_n_max or "-"), f"{result.decode_tps:.1f}",
                   f"{result.prompt_tps:.1f}" if result.prompt_tps else "-", str(result.drafted),
                   str(result.accepted), acc]],
                 ["spec", "draft n", "decode t/s", "prompt t/s", "drafted", "accepted", "acceptance"]))
    say(f"(median of {args.runs} run(s), {args.tokens} tokens, prompt '{args.prompt}', from the server's timings)")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    binary, caps, model, hw, settings, drafts = resolve_inputs(args)
    if args.tokens < 8:
        raise UsageError("--tokens must be at least 8")

    def log(s: str) -> None:
        say(s, file=sys.stderr, flush=True)

    try:
        run = sweep if args.full else tune
        outcome = run(binary, model, hw, caps, settings, drafts, tokens=args.tokens, log=log)
    except PlanError as exc:
        raise UsageError(str(exc)) from exc
    except BenchError as exc:
        raise RunError(str(exc)) from exc
    choice = outcome.choice
    stored = tuning_store.save(model.path, caps.build_number, choice)
    if args.json:
        print_json({"best": choice.to_dict(), "description": choice.describe(), "in_effect": choice.in_effect_words(),
                    "note": choice.note, "servers": outcome.servers, "wall_s": round(outcome.wall_s, 2),
                    "stored_in": str(stored) if stored else None})
        return 0
    rows = []
    for r in outcome.rows:
        best = r is outcome.best
        acc = f"{r.acceptance * 100:.0f}%" if r.acceptance is not None else "-"
        rows.append([r.label(), f"{r.decode_tps['code']:.1f}", f"{r.decode_tps['prose']:.1f}", acc,
                      f"{r.speedup:.2f}x", str(r.tokens), "best" if best else ""])
    print(table(rows, ["setting", "code t/s", "prose t/s", "accepted", "vs off", "tokens", ""]))
    if choice.note:
        print()
        say(choice.note)
    print()
    where = (f"stored for this model, llama-server build and machine ({stored})" if stored else
             "not stored: the tuning results file could not be written (see the note)")
    say(f"{choice.describe()} ({outcome.servers} server loads, {outcome.wall_s:.0f} s); {where}")
    return 0
