"""Acting on Tune's result: what "Use this" changes in a model's settings so that the measured setting runs.

The planner uses a measurement only where the user left every method on Auto (and, for a drafter,
the draft length on its default): a method set On or Off by hand wins. After a tune that found
ngram-mod fastest, "In effect" still said "off" because ngram-mod had been set to Off, and nothing
said so. :func:`adopt_tuned` names what stands in the way and the settings without it; the window's
"Use this" applies them, and "In effect" follows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from llama_launcher.core.settings.launch import ModelSettings
from llama_launcher.core.speculative.measured import TunedChoice
from llama_launcher.core.speculative.methods import BY_ID, METHODS, SpecMode


@dataclass(frozen=True)
class Adoption:
    settings: ModelSettings  # the model's settings with the measured setting in effect
    changes: list[str] = field(default_factory=list)  # what "Use this" changes, in words ([]: in effect already)

    @property
    def in_effect(self) -> bool:
        return not self.changes

    def words(self) -> str:
        if self.in_effect:
            return "In effect: Auto uses this measurement for this model."
        return ("Not in effect: your own settings win over it (" + "; ".join(self.changes) + "). "
                "Use this sets them so that Auto uses the measurement.")


def adopt_tuned(ms: ModelSettings, tuned: TunedChoice) -> Adoption:
    """The settings under which the planner's Auto uses ``tuned``, and what changes to get there."""
    changes = [f"{BY_ID[mid].label}: {ms.mode(mid).label} → Auto" for mid in (m.id for m in METHODS)
               if ms.mode(mid) is not SpecMode.AUTO]
    drafts = any(BY_ID[m].kind == "model" for m in tuned.methods)
    keep_length = ms.draft_n_max is None or not drafts
    if not keep_length:
        changes.append(f"draft length: {ms.draft_n_max} → the measured {tuned.draft_n_max or 'default'}")
    adopted = dataclasses.replace(ms, modes={}, draft_n_max=ms.draft_n_max if keep_length else None)
    return Adoption(adopted, changes)
