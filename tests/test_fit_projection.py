"""llama.cpp's own projection (llama-fit-params) beside the launcher's estimate: it runs, it decides, it is said.

The real tool (built by get-server beside llama-server) against the real server's figures; fake
tools only for failures a real one cannot be made to produce.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.host.network import free_port
from llama_launcher.core.llama_server.probe import probe
from llama_launcher.core.memory import evidence as memory_evidence
from llama_launcher.core.memory.breakdown import parse_server_memory
from llama_launcher.core.memory.estimate import DECIDED_LLAMA_CPP
from llama_launcher.core.memory.evidence import read_log_lines
from llama_launcher.core.memory.fit_projection import (
    FitProjectionError,
    project,
    projection_contexts,
    run_fit_print,
    tool_beside,
)
from llama_launcher.core.memory.launch import LaunchMemory
from llama_launcher.core.models.model_info import read_model_info
from llama_launcher.core.plan.with_evidence import plan_with_evidence
from llama_launcher.core.server.process import ServerRunner
from llama_launcher.core.settings.launch import PlanSettings

from conftest import _missing
from fake_server import make_script
from gguf_factory import write_model

CPU = Hardware("test CPU", 65536, 60000, False, [])


@pytest.fixture(scope="session")
def fit_tool(llama_server: str) -> Path:
    tool = tool_beside(llama_server)
    if tool is None:
        _missing("llama-fit-params (beside llama-server)")
    assert tool is not None
    return tool


@pytest.mark.integration
@pytest.mark.parametrize("fa", ["on", "off"])
def test_projection_of_the_real_tool_is_close_to_what_the_server_uses(fit_tool: Path, llama_server: str,
                                                                     demo_model: Path, runners: list, fa: str) -> None:
    memory_evidence._projections.clear()
    model = read_model_info(demo_model)
    settings = PlanSettings(port=free_port(), threads=1, ctx=16384, modes={"mtp": "off"}, extra_args=f"-fa {fa} --no-warmup")
    plan = plan_with_evidence(llama_server, model, CPU, probe(llama_server), settings)
    mem = plan.memory
    assert mem is not None and mem.decided_by == DECIDED_LLAMA_CPP and mem.llama_cpp_mib == mem.total_mib
    assert mem.flash_attn == (fa == "on")
    text = mem.describe()
    assert "decided by llama.cpp's projection (llama-fit-params)" in text and f"launcher estimate {mem.launcher_mib:,}" in text
    r = ServerRunner(plan.argv, ready_timeout=240)
    runners.append(r)
    r.start()
    assert r.wait_until(("ready", "failed", "stopped"), 270) == "ready", list(r.history)[-5:]
    r.stop()
    real = parse_server_memory(read_log_lines(r.log_path or "")).total_mib()
    assert real is not None
    assert abs(mem.total_mib / real - 1) <= 0.15, (mem.describe(), real)
    assert abs(mem.launcher_mib / real - 1) <= 0.15, (mem.describe(), real)


@pytest.mark.integration
def test_real_tool_points_and_flash_attention_resolution(fit_tool: Path, demo_model: Path) -> None:
    p = project(fit_tool, str(demo_model), (4096, 32768), LaunchMemory(flash_attn="auto"))
    assert p.flash_attn_used is True  # CPU: 'auto' resolves to on, and the tool's log says so
    assert [pt.context for pt in p.points] == [4096, 32768]
    a, b = p.points
    assert set(a.rows) == {"Host", "CPU_REPACK"}  # the breakdown table's rows, not only stdout's Host line
    assert a.parts()[0] == b.parts()[0] > 200  # weights do not depend on the context
    assert b.parts()[1] > a.parts()[1]  # KV grows with it
    assert p.mib_at(4096) == a.total() and p.mib_at(32768) == b.total()
    assert a.total() < p.mib_at(16384) < b.total()


def test_contexts_measured_are_small_chosen_and_native() -> None:
    assert projection_contexts(32768) == (4096, 32768)
    assert projection_contexts(32768, 8192) == (4096, 8192, 32768)
    assert projection_contexts(2048, 2048) == (2048,)


def _fake_tool(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return make_script(folder / "llama-fit-params", "import sys, time\n" + body)


def test_failures_of_the_tool_are_one_line(tmp_path: Path) -> None:
    launch = LaunchMemory()
    failing = _fake_tool(tmp_path / "a", "print('loading...', file=sys.stderr)\n"
                                         "print('error: failed to load model', file=sys.stderr)\nsys.exit(1)\n")
    with pytest.raises(FitProjectionError, match=r"^llama-fit-params failed \(exit 1\): error: failed to load model$"):
        run_fit_print(failing, "/m.gguf", 4096, launch)
    silent = _fake_tool(tmp_path / "b", "print('nothing useful')\n")
    with pytest.raises(FitProjectionError, match="printed no memory projection"):
        run_fit_print(silent, "/m.gguf", 4096, launch)
    slow = _fake_tool(tmp_path / "c", "time.sleep(30)\n")
    with pytest.raises(FitProjectionError, match="did not finish within 1 s"):
        run_fit_print(slow, "/m.gguf", 4096, launch, timeout=1)
    with pytest.raises(FitProjectionError, match="cannot run"):
        run_fit_print(tmp_path / "missing" / "llama-fit-params", "/m.gguf", 4096, launch)


def test_a_failed_projection_keeps_what_past_launches_taught(tmp_path: Path) -> None:
    folder = tmp_path / "bin"
    _fake_tool(folder, "print('error: failed to load model', file=sys.stderr)\nsys.exit(1)\n")
    binary = make_script(folder / "llama-server", "pass\n")
    model = read_model_info(write_model(tmp_path / "m.gguf", arch="llama", name="M"))
    past = memory_evidence.MemoryEvidence(measurements=["a past launch"])  # type: ignore[list-item]
    got = memory_evidence.add_projection(past, str(binary), model, LaunchMemory(), 4096)
    assert got.projection is None and got.measurements == ["a past launch"]
    assert got.projection_error is not None and "failed to load model" in got.projection_error
    assert "\n" not in got.projection_error


def test_stdout_rows_are_used_when_the_tool_prints_no_table(tmp_path: Path) -> None:
    tool = _fake_tool(tmp_path / "t", "print('CUDA0 17904 384 898')\nprint('Host 355 0 12')\n")
    point, fa = run_fit_print(tool, "/m.gguf", 40960, LaunchMemory())
    assert point.rows == {"CUDA0": (17904, 384, 898), "Host": (355, 0, 12)} and fa is None
    assert point.total(devices_only=True) == 17904 + 384 + 898


def test_cli_plan_shows_both_numbers_and_which_decided(tmp_path: Path, mtp_models: dict[str, Path]) -> None:
    from fake_server import make_fake_server

    exe = make_fake_server(tmp_path / "bin", "b11434-current")
    args = ["plan", str(mtp_models["plain"]), "--binary", str(exe), "--ctx", "4096"]
    out = subprocess.run([sys.executable, "-m", "llama_launcher", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("memory: "))
    assert line.endswith("; launcher estimate")  # decided by the launcher: no other figure to show
    assert "note: llama.cpp's projection: llama-fit-params is not beside this llama-server" in out.stdout
    # a tool beside the binary: its projection decides, and the plan says so (text and JSON)
    _fake_tool(tmp_path / "bin", "print('Host 1 3 40')\n")
    out = subprocess.run([sys.executable, "-m", "llama_launcher", *args, "--json"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    mem = json.loads(out.stdout)["memory"]
    assert mem["decided_by"] == "llama.cpp projection" and mem["llama_cpp_mib"] == mem["total_mib"]
    assert mem["launcher_mib"] > 0 and mem["notes"] == []
    text = subprocess.run([sys.executable, "-m", "llama_launcher", *args], capture_output=True, text=True, timeout=120)
    line = next(ln for ln in text.stdout.splitlines() if ln.startswith("memory: "))
    assert f"decided by llama.cpp's projection (llama-fit-params); launcher estimate {mem['launcher_mib']:,} MiB" in line
