"""The window's memory line says what decided the fit: the launcher, llama.cpp, or the last launch."""

from __future__ import annotations

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.memory.corrections import MemoryMeasurement
from llama_launcher.core.memory.estimate import MemoryEvidence
from llama_launcher.core.models.model_info import ModelInfo
from llama_launcher.core.plan.planner import plan_launch
from llama_launcher.core.settings.launch import PlanSettings
from llama_launcher.ui.launch.panel import LaunchPanel
from test_launch_planner import CURRENT

CPU_HW = Hardware("x86", 65536, 60000, False, [])


def _model() -> ModelInfo:
    return ModelInfo(path="/m/t.gguf", name="t", file_name="t.gguf", folder="/m", file_size=300 * 1024 * 1024,
                     architecture="llama", parameters=150_000_000, context_length=8192, block_count=12,
                     arch_meta={"embedding_length": 768, "attention.head_count": 12, "attention.head_count_kv": 4,
                                "feed_forward_length": 2048, "vocab_size": 32000})


def test_memory_line_and_tooltip_after_a_launch_was_learned(qtbot) -> None:
    panel = LaunchPanel()
    qtbot.addWidget(panel)
    settings = PlanSettings(port=8123, ctx=8192, modes={"mtp": "off", "ngram-mod": "off"})
    first = plan_launch("/bin/llama-server", _model(), CPU_HW, CURRENT, settings)
    panel.show_plan(first)
    assert first.memory is not None
    assert panel.memory.badge.text().endswith("; launcher estimate")
    assert panel.memory.badge.text().startswith(f"at 8,192 tokens — fits: ~{first.memory.total_mib:,} MiB needed (weights ")
    tip = panel.memory.badge.toolTip()
    assert "Compute buffers:" in tip and "FlashAttention on" in tip and "Decided by: launcher estimate" in tip
    learned = MemoryMeasurement(context=8192, weights_mib=310.0, kv_mib=100.0, compute_mib=90.0,
                                flash_attn_used=True, estimated_mib=first.memory.launcher_mib,
                                key=first.memory.launch.key())
    again = plan_launch("/bin/llama-server", _model(), CPU_HW, CURRENT, settings,
                        memory_evidence=MemoryEvidence(measurements=[learned]))
    panel.show_plan(again)
    text = panel.memory.badge.text()
    assert text.startswith("at 8,192 tokens — fits: ~500 MiB needed (weights 310 + KV 100 + compute 90)")
    assert text.endswith(f"learned from your last launch (it used 500 MiB at 8,192 tokens, estimated then "
                         f"{first.memory.launcher_mib:,})")
    assert f"Launcher estimate: {first.memory.launcher_mib:,} MiB" in panel.memory.badge.toolTip()
