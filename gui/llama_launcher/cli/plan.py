"""``plan``: the argv the launcher would run, with the reason for every flag."""

from __future__ import annotations

import argparse

from llama_launcher.cli.inputs import make_plan_with_inputs
from llama_launcher.cli.output import print_json, say
from llama_launcher.core.state.command_line import shown_command_line


def cmd_plan(args: argparse.Namespace) -> int:
    _, _, _, _, plan = make_plan_with_inputs(args, with_projection=True)
    if args.json:
        print_json(plan.to_dict())
        return 0

    say(shown_command_line(plan.redacted_argv()))  # exact and visible: a file's escape codes shown, not dropped
    print()
    for f in plan.shown_flags():
        say(f"  {shown_command_line(f.args)[:60]:<60}  {f.reason}")
    if plan.memory:
        print()
        say(f"memory: {plan.memory.describe()}")
        for note in plan.memory.notes:
            say(f"note: {note}")
    say(f"branch: {'GPU' if plan.gpu_branch else 'CPU/Mac'} ({plan.gpu_reason})")
    for w in plan.warnings:
        say(f"warning: {w}")
    return 0
