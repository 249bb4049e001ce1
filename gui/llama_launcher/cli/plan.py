"""``plan``: the argv the launcher would run, with the reason for every flag."""

from __future__ import annotations

import argparse
import shlex

from llama_launcher.cli.inputs import make_plan_with_inputs
from llama_launcher.cli.output import print_json, say


def cmd_plan(args: argparse.Namespace) -> int:
    _, _, _, _, plan = make_plan_with_inputs(args, with_projection=True)
    if args.json:
        print_json(plan.to_dict())
        return 0

    say(shlex.join(plan.redacted_argv()))
    print()
    for f in plan.to_dict()["reasons"]:
        say(f"  {' '.join(f['args'])[:60]:<60}  {f['reason']}")
    if plan.memory:
        print()
        say(f"memory: {plan.memory.describe()}")
        for note in plan.memory.notes:
            say(f"note: {note}")
    say(f"branch: {'GPU' if plan.gpu_branch else 'CPU/Mac'} ({plan.gpu_reason})")
    for w in plan.warnings:
        say(f"warning: {w}")
    return 0
