"""The memory estimate against the real llama-server's own figures (issue 14).

One server per configuration, started with the planner's argv (``-t 1``, no generation): the
demo model and the synthetic MTP model at 4k/32k/128k, FlashAttention on and off, MTP on and off.
The plan's estimate must be within 15% of what the server reports (its buffer lines, which are
the parts of its exit breakdown; the MTP draft context's buffers are added to the breakdown's
main-context figure). Then: a finished launch teaches the next plan ("learned from your last
launch"), which must be within 15% of the figure the server reported.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.host.network import free_port
from llama_launcher.core.llama_server.probe import probe
from llama_launcher.core.memory.breakdown import ServerMemory, parse_server_memory
from llama_launcher.core.memory.estimate import DECIDED_LAUNCHER, DECIDED_LEARNED
from llama_launcher.core.memory.evidence import learn_after_launch, read_log_lines
from llama_launcher.core.models.model_info import ModelInfo, read_model_info
from llama_launcher.core.plan.planner import Plan, plan_launch
from llama_launcher.core.plan.with_evidence import plan_with_evidence
from llama_launcher.core.server.process import ServerRunner
from llama_launcher.core.settings.launch import PlanSettings

pytestmark = pytest.mark.integration
CPU = Hardware("test CPU", 65536, 60000, False, [])
TOLERANCE = 0.15
CONTEXTS = [4096, 32768, 131072]


def plan_for(binary: str, model: ModelInfo, ctx: int, fa: str, mtp: str, ngram: str = "auto") -> Plan:
    settings = PlanSettings(port=free_port(), threads=1, ctx=ctx, modes={"mtp": mtp, "ngram-mod": ngram},
                            extra_args=f"-fa {fa} --no-warmup")
    return plan_launch(binary, model, CPU, probe(binary), settings)


def run_and_stop(runners: list, plan: Plan, timeout: float = 240.0) -> ServerRunner:
    """Start the planned server, wait until it is ready, stop it (its exit breakdown lands in the log)."""
    r = ServerRunner(plan.argv, ready_timeout=timeout)
    runners.append(r)
    r.start()
    state = r.wait_until(("ready", "failed", "stopped"), timeout + 30)
    assert state == "ready", (r.reason, list(r.history)[-8:])
    r.stop()
    assert r.wait_until(("stopped",), 30) == "stopped"
    return r


def server_figures(r: ServerRunner) -> ServerMemory:
    assert r.log_path is not None
    mem = parse_server_memory(read_log_lines(r.log_path))
    assert mem.has_buffers and mem.rows, "the server printed no memory figures (is -lv 4 in the plan?)"
    # the exit breakdown (whole MiB, rounded down) is what the buffer lines add up to
    table = {"weights": sum(x.model for x in mem.rows), "kv": sum(x.context for x in mem.rows),
             "compute": sum(x.compute for x in mem.rows)}
    parts = mem.parts_mib()
    for k, v in table.items():
        assert v <= parts[k] + 0.01 and parts[k] - v < len(mem.rows) + 0.01, (k, v, parts[k])
    return mem


def check(plan: Plan, mem: ServerMemory, label: str) -> float:
    assert plan.memory is not None and plan.memory.decided_by == DECIDED_LAUNCHER
    real = mem.total_mib()
    assert real is not None and real > 0
    ratio = plan.memory.launcher_mib / real
    assert abs(ratio - 1) <= TOLERANCE, f"{label}: estimated {plan.memory.launcher_mib} MiB ({plan.memory.parts_text()}), " \
                                       f"the server reported {real:.1f} MiB ({mem.parts_mib()})"
    return ratio


@pytest.mark.parametrize("fa", ["on", "off"])
@pytest.mark.parametrize("ctx", CONTEXTS)
def test_demo_model_estimate_matches_the_server(llama_server: str, demo_model: Path, runners: list, ctx: int,
                                                fa: str) -> None:
    model = read_model_info(demo_model)
    plan = plan_for(llama_server, model, ctx, fa, mtp="off")  # CPU branch: ngram-mod, 64-token drafts
    assert plan.memory is not None and plan.memory.flash_attn == (fa == "on")
    mem = server_figures(run_and_stop(runners, plan))
    assert mem.flash_attn == (fa == "on") and mem.n_ctx == ctx and mem.draft is None
    check(plan, mem, f"demo {ctx} fa {fa}")


@pytest.mark.parametrize("mtp", ["on", "off"])
@pytest.mark.parametrize("fa", ["on", "off"])
@pytest.mark.parametrize("ctx", CONTEXTS)
def test_synthetic_mtp_model_estimate_matches_the_server(llama_server: str, mtp_models: dict[str, Path],
                                                         runners: list, ctx: int, fa: str, mtp: str) -> None:
    model = read_model_info(mtp_models["mtp"])
    plan = plan_for(llama_server, model, ctx, fa, mtp=mtp, ngram="off")
    assert plan.memory is not None
    assert ("draft-mtp" in plan.argv) == (mtp == "on") and (plan.memory.draft_mib > 0) == (mtp == "on")
    mem = server_figures(run_and_stop(runners, plan))
    assert (mem.draft is not None) == (mtp == "on")
    if mtp == "on":
        assert mem.draft is not None and mem.draft.compute > 0  # the draft context's own buffers were counted
    check(plan, mem, f"synthetic {ctx} fa {fa} mtp {mtp}")


def test_a_finished_launch_teaches_the_next_estimate(llama_server: str, demo_model: Path, runners: list) -> None:
    model = read_model_info(demo_model)
    caps = probe(llama_server)
    settings = PlanSettings(port=free_port(), threads=1, ctx=8192, modes={"mtp": "off"}, extra_args="-fa off --no-warmup")
    first = plan_with_evidence(llama_server, model, CPU, caps, settings, with_projection=False)
    assert first.memory is not None and first.memory.decided_by == DECIDED_LAUNCHER
    r = run_and_stop(runners, first)
    reported = parse_server_memory(read_log_lines(r.log_path or "")).total_mib()
    assert reported is not None
    learned = learn_after_launch(model, caps.build_number, first.memory, r.log_path)
    assert learned is not None and learned.context == 8192 and learned.flash_attn_used is False
    assert abs(learned.total_mib - reported) < 0.05
    # the next plan for this model, build and machine starts from what the server really used
    again = plan_with_evidence(llama_server, model, CPU, caps, settings, with_projection=False)
    mem = again.memory
    assert mem is not None and mem.decided_by == DECIDED_LEARNED
    assert mem.describe().endswith(f"learned from your last launch (it used {reported:,.0f} MiB at 8,192 tokens, "
                                   f"estimated then {first.memory.launcher_mib:,})")
    assert abs(mem.total_mib / reported - 1) <= TOLERANCE
    assert abs(mem.total_mib - reported) <= 2  # the same settings: what it really used, to rounding
    # other settings (FlashAttention on) are not corrected by that launch
    other = plan_with_evidence(llama_server, model, CPU, caps,
                               PlanSettings(port=settings.port, threads=1, ctx=8192, modes={"mtp": "off"},
                                            extra_args="-fa on --no-warmup"), with_projection=False)
    assert other.memory is not None and other.memory.decided_by == DECIDED_LAUNCHER
