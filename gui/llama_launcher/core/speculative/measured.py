"""A speculative setting measured on this machine (what ``tune`` found), as the planner reads it.

The planner's Auto prefers a measured result over any fixed rule; ``tuning.store`` keeps these per
(model file, build, machine) and ``tuning.tune`` makes them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from llama_launcher.core.speculative.methods import combo_label, parse_combo
from llama_launcher.core.state.typed_json import check_value

SAME_WITHIN = 0.03  # two speeds this close are the same (tune's tie: the simpler setting is kept)


@dataclass
class MeasuredRow:
    """One setting tune measured: its speed per workload, how many drafts were accepted, vs off."""

    setting: str  # methods' ids joined by '+' ("off" when none)
    label: str
    decode_tps: dict[str, float]  # per workload ("code", "prose")
    speedup: float  # its mean decode t/s / off's
    methods: list[str] = field(default_factory=list)
    draft_n_max: int | None = None
    acceptance: float | None = None
    drafted: int = 0
    accepted: int = 0
    mean_tps: float = 0.0
    tokens: int = 0

    @classmethod
    def from_dict(cls, data: Any) -> MeasuredRow:
        """A stored row, every field of its declared type; ``ValueError`` otherwise."""
        return check_value("a measured row", cls, data)

    def short_label(self) -> str:
        """The setting alone ("off"), for a table cell; how it was measured goes in the row's tooltip."""
        return combo_label(self.methods, self.draft_n_max)

    def how_measured(self) -> str:
        """'read from the ngram-mod run's steps that drafted nothing' for a derived baseline, else ''."""
        if "(from the " in self.label and self.label.endswith(")"):
            inner = self.label[self.label.index("(from the ") + 1:-1]
            return "read " + inner.replace("run's steps without drafts", "run's steps that drafted nothing")
        return ""


def ratio_words(ratio: float) -> str:
    """'5.08× as fast', '2.00× slower', 'the same within the noise'."""
    if ratio >= 1 + SAME_WITHIN:
        return f"{ratio:.2f}× as fast"
    if ratio <= 1 - SAME_WITHIN and ratio > 0:
        return f"{1 / ratio:.2f}× slower"
    return "the same within the noise"


@dataclass
class TunedChoice:
    methods: tuple[str, ...]  # spec_methods ids; () is "off"
    draft_n_max: int | None
    speedup: float  # decode t/s of the choice / decode t/s with speculation off
    margin: float = 0.0  # the measurement noise of that ratio (± this much)
    # Always None: tune measures the drafter the plan picks, and a launch picks it again (no file is
    # stored). Kept because stored results and `tune --json` (docs/cli.md) have carried the key.
    draft_model: str | None = None
    measured_at: str = ""
    table: list[MeasuredRow] = field(default_factory=list)
    note: str = ""  # e.g. "MTP n=2 was as fast within the noise: the simpler ngram-mod is used"

    def label(self) -> str:
        return combo_label(self.methods, self.draft_n_max)

    @property
    def off_tps(self) -> float | None:
        """The decode t/s measured without speculation, where the table has it."""
        return next((r.mean_tps for r in self.table if r.setting == "off"), None)

    def chosen_row(self) -> MeasuredRow | None:
        return next((r for r in self.table if tuple(r.methods) == tuple(self.methods)
                     and r.draft_n_max == self.draft_n_max), None)

    def off_row(self, tokens: int | None = None) -> MeasuredRow | None:
        offs = [r for r in self.table if r.setting == "off"]
        return next((r for r in offs if tokens is None or r.tokens == tokens), offs[0] if offs else None)

    def workload_ratios(self) -> dict[str, tuple[float, float, float]]:
        """Per workload (code, prose): (the choice's t/s, off's t/s, their ratio), where the table has both.

        An average over workloads hid that ngram-mod made code 5× faster and prose no faster at all."""
        pick = self.chosen_row()
        off = self.off_row(pick.tokens) if pick is not None else None
        if pick is None or off is None:
            return {}
        return {w: (tps, off.decode_tps[w], tps / off.decode_tps[w]) for w, tps in pick.decode_tps.items()
                if off.decode_tps.get(w)}

    def describe(self) -> str:
        ratios = self.workload_ratios()
        if ratios and self.methods:
            each = ", ".join(f"{w} {r:.2f}×" for w, (_, _, r) in ratios.items())
            return f"measured: {self.label()} ({each} vs off)"
        if ratios:
            return "measured: off (no setting was faster here)"
        pct = (self.speedup - 1.0) * 100
        margin = f" ± {self.margin * 100:.0f}%" if self.margin >= 0.005 else ""
        return f"measured: {self.label()}, {pct:+.0f}%{margin} vs off"

    def in_effect_words(self) -> str:
        """What "In effect" adds after the setting it names: 'measured here: code 1.67×, prose 1.99× vs off'."""
        ratios = self.workload_ratios()
        if ratios and self.methods:
            return "measured here: " + ", ".join(f"{w} {r:.2f}×" for w, (_, _, r) in ratios.items()) + " vs off"
        if ratios:
            return "measured here: no setting was faster"
        return self.describe()

    def result_lines(self) -> list[str]:
        """Tune's result for a person: the fastest setting, then each workload's speed against off."""
        ratios = self.workload_ratios()
        head = (f"Fastest on this machine: {self.label()}" if self.methods else
                "Fastest on this machine: off — no speculative setting was faster")
        lines = [head]
        for w, (tps, off, r) in ratios.items():
            lines.append(f"{w.capitalize()}: {tps:.1f} t/s against {off:.1f} off — {ratio_words(r)}"
                         if self.methods else f"{w.capitalize()}: {off:.1f} t/s off")
        if self.note:
            lines.append(self.note[0].upper() + self.note[1:])
        return lines

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["methods"] = list(self.methods)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> TunedChoice:
        """Validate one stored result; raises ValueError/TypeError/KeyError when it is not one."""
        if not isinstance(data, dict):
            raise ValueError("a stored result is not an object")
        if "methods" in data:
            methods = data["methods"]
            if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
                raise ValueError("methods must be a list of names")
            ids = parse_combo("+".join(methods))
        else:  # version 1: "off", "ngram", "mtp", "mtp+ngram"
            ids = parse_combo(str(data["setting"]))
        n = data.get("draft_n_max")
        speedup = data["speedup"]
        if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
            raise ValueError("draft_n_max must be a whole number")
        if isinstance(speedup, bool) or not isinstance(speedup, (int, float)) or not math.isfinite(speedup):
            raise ValueError("speedup must be a number")
        margin = data.get("margin", 0.0)
        margin = float(margin) if isinstance(margin, (int, float)) and not isinstance(margin, bool) else 0.0
        table = data.get("table", [])
        draft = data.get("draft_model")
        return cls(ids, n, float(speedup), margin if math.isfinite(margin) else 0.0,
                   draft if isinstance(draft, str) else None, str(data.get("measured_at", "")),
                   _rows(table),
                   str(data.get("note", "")))


def _rows(table: Any) -> list[MeasuredRow]:
    """The stored table's rows that are rows (an old or edited file may hold others: they are left out)."""
    out = []
    for r in table if isinstance(table, list) else []:
        try:
            out.append(MeasuredRow.from_dict(r))
        except ValueError:
            continue
    return out
