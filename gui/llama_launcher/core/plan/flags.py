"""The planner's vocabulary: a flag with the reason it is there, its group, and the one error it raises."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any

from llama_launcher.core.state.errors import UserFacing


class FlagGroup(str, enum.Enum):
    """What a flag is for (the preview groups and colours by it; ``plan --json`` prints the value)."""

    GENERAL = "general"
    MODEL = "model"
    NETWORK = "network"
    SPECULATIVE = "speculative"
    MEMORY = "memory"
    METRICS = "metrics"
    USER = "user"

    def __str__(self) -> str:
        return self.value


class PlanError(UserFacing, ValueError):
    """Input that cannot be planned (bad extra args, bad values); one line."""


@dataclass
class FlagReason:
    args: list[str]
    reason: str
    group: FlagGroup = FlagGroup.GENERAL

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
