"""Plan with what is known beyond metadata: this model's past launches and llama.cpp's projection.

The planner is pure; this is the one place that gathers its evidence (``memory.evidence``) and
plans twice: once to learn which settings the plan chooses, once with the evidence for those.
"""

from __future__ import annotations

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.core.memory.evidence import add_projection, gather
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.plan.planner import Plan, plan_launch
from llama_launcher.core.settings.launch import PlanSettings
from llama_launcher.core.speculative.measured import TunedChoice
from llama_launcher.core.speculative.pairing import DraftOption


def plan_with_evidence(binary: str, model: ModelInfo, hw: Hardware, caps: Capabilities, settings: PlanSettings,
                       tuned: TunedChoice | None = None, with_projection: bool = True,
                       drafts: list[DraftOption] | None = None, avoid: dict[str, str] | None = None) -> Plan:
    """Plan, then plan again with this model's evidence for the settings the first plan chose.

    The first run of ``llama-fit-params`` for a model takes a second or two (then it is
    remembered): the window should call this from a worker thread. Raises ``PlanError``.
    """
    evidence = gather(model, caps.build_number)
    plan = plan_launch(binary, model, hw, caps, settings, tuned, drafts, memory_evidence=evidence, avoid=avoid)
    if with_projection and plan.memory is not None:
        evidence = add_projection(evidence, binary, model, plan.memory.launch, plan.memory.context)
        plan = plan_launch(binary, model, hw, caps, settings, tuned, drafts, memory_evidence=evidence, avoid=avoid)
    return plan
