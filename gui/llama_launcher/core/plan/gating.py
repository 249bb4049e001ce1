"""Whether Launch and Tune can be used right now, and if not, why: decided here, shown by the window.

The answer depends on the whole situation (the model, the llama-server, the plan, a server or a
tune running), so it is computed from all of it each time, never patched by whichever event came
last: a state change cannot make the tooltip forget that the binary is still being probed.
"""

from __future__ import annotations

from dataclasses import dataclass

from llama_launcher.core.models.file_problem import explain_text
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.server.process import ServerState


@dataclass(frozen=True)
class Situation:
    model: ModelInfo | None
    has_binary: bool
    probed: bool  # the binary's capabilities and the hardware are known
    probe_error: str
    planned: bool  # a plan exists
    plan_error: str
    server: ServerState = ServerState.IDLE
    tuning: bool = False


@dataclass(frozen=True)
class Gate:
    ok: bool
    why: str = ""  # why not, in words (when ``ok``: empty, or a note such as what Tune will do first)


def planning_blocker(s: Situation) -> str:
    """What keeps the selection from being planned, or '' when it can be."""
    if s.model is None:
        return "select a model"
    if s.model.error:
        return f"this file cannot be launched. {explain_text(s.model.error)}"
    if not s.has_binary:
        return "no llama-server: see the llama-server tab"
    if s.probe_error:
        return f"the llama-server in use cannot be used: {s.probe_error}"
    if not s.probed:
        return "probing llama-server…"
    if s.plan_error:
        return s.plan_error
    if not s.planned:
        return "planning…"
    return ""


def launch_gate(s: Situation) -> Gate:
    if s.tuning:
        return Gate(False, "Tune is measuring on its own servers; wait for it or cancel it")
    if s.server.running or s.server is ServerState.STOPPING:
        return Gate(False, "llama-server is already running; stop it first")
    blocker = planning_blocker(s)
    return Gate(not blocker, blocker)


def tune_gate(s: Situation) -> Gate:
    if s.tuning:
        return Gate(False, "Tune is running")
    blocker = planning_blocker(s)
    if blocker:
        return Gate(False, f"Cannot tune: {blocker}")
    if s.server.running or s.server is ServerState.STOPPING:
        return Gate(True, "Tune starts its own servers: it asks, then stops the running one first")
    return Gate(True)
