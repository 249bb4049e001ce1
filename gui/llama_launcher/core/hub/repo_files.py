"""A repository's GGUF files as a user chooses among them: one entry per quant (a split quant is one
entry, its parts in order), the MTP heads (``mtp-*.gguf``, written by llama.cpp's converter with
``--mtp``) and the vision projectors (``mmproj*.gguf``) apart.

Split quants often sit in a folder named after the quant (``Q6_K/name-Q6_K-00001-of-00002.gguf``), so
the listing is recursive and the quant is read from the file name, else from its folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from llama_launcher.core.hub.client import RemoteFile
from llama_launcher.core.models.model_info import SPLIT_RE

# llama.cpp's quantization names (llama-quantize's list) as they appear in file names, with Unsloth's
# "UD-" (dynamic) prefix; the last one in the name wins ("Model-Q8_0-Q4_K_M" is a Q4_K_M).
QUANT_RE = re.compile(
    r"(?<![A-Za-z0-9])((?:UD-)?(?:I?Q[1-8](?:_[A-Z0-9]+)*|TQ[12]_0|MXFP4(?:_MOE)?|BF16|F16|F32))(?![A-Za-z0-9])",
    re.IGNORECASE)


def quant_of(path: str) -> str:
    """The quant a GGUF's name (or folder) says it is, upper-case; "" when neither says."""
    name = path.rsplit("/", 1)[-1]
    stem = name[:-5] if name.lower().endswith(".gguf") else name
    m = SPLIT_RE.match(name)
    if m:
        stem = m.group("stem")
    found = QUANT_RE.findall(stem)
    if not found and "/" in path:
        found = QUANT_RE.findall(path.rsplit("/", 2)[-2])
    return found[-1].upper() if found else ""


def is_mtp_head(path: str) -> bool:
    return path.rsplit("/", 1)[-1].lower().startswith("mtp-")


def is_projector(path: str) -> bool:
    return "mmproj" in path.rsplit("/", 1)[-1].lower()


@dataclass
class QuantGroup:
    """One choosable model file: a single GGUF, or every part of a split one."""

    quant: str
    files: list[RemoteFile]  # part 1 first
    split_count: int = 0
    missing_parts: int = 0

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def first(self) -> RemoteFile:
        return self.files[0]

    @property
    def complete(self) -> bool:
        return self.missing_parts == 0


@dataclass
class RepoModels:
    quants: list[QuantGroup] = field(default_factory=list)  # smallest first
    mtp_heads: list[RemoteFile] = field(default_factory=list)
    projectors: list[RemoteFile] = field(default_factory=list)

    def find(self, quant: str) -> QuantGroup | None:
        want = quant.upper()
        return next((q for q in self.quants if q.quant == want), None) or \
            next((q for q in self.quants if q.first.name.upper() == want), None)

    def mtp_head_for(self, quant: QuantGroup) -> RemoteFile | None:
        """The MTP head to bring along: the one of the same quant, else the largest (the most precise)."""
        same = [h for h in self.mtp_heads if quant_of(h.path) == quant.quant]
        pool = same or self.mtp_heads
        return max(pool, key=lambda h: h.size) if pool else None

    def projector(self) -> RemoteFile | None:
        """The projector to bring along: F16 (the converter's default), else the smallest."""
        f16 = [p for p in self.projectors if quant_of(p.path) == "F16"]
        pool = f16 or self.projectors
        return min(pool, key=lambda p: p.size) if pool else None


def group_repo(files: list[RemoteFile]) -> RepoModels:
    """Group a repository listing; files that are not GGUF are left out."""
    out = RepoModels()
    splits: dict[tuple[str, str, int], dict[int, RemoteFile]] = {}
    for f in files:
        if not f.path.lower().endswith(".gguf"):
            continue
        if is_mtp_head(f.path):
            out.mtp_heads.append(f)
            continue
        if is_projector(f.path):
            out.projectors.append(f)
            continue
        m = SPLIT_RE.match(f.name)
        if m and int(m.group("count")) > 1 and 1 <= int(m.group("no")) <= int(m.group("count")):
            folder = f.path.rsplit("/", 1)[0] if "/" in f.path else ""
            splits.setdefault((folder, m.group("stem"), int(m.group("count"))), {})[int(m.group("no"))] = f
            continue
        out.quants.append(QuantGroup(quant_of(f.path) or f.name, [f]))
    for (_folder, _stem, count), parts in splits.items():
        ordered = [parts[n] for n in sorted(parts)]
        group = QuantGroup(quant_of(ordered[0].path) or ordered[0].name, ordered, count, count - len(parts))
        if 1 not in parts:
            group.missing_parts = max(group.missing_parts, 1)
        out.quants.append(group)
    _name_duplicates(out.quants)
    out.quants.sort(key=lambda q: (q.size, q.quant))
    return out


def _name_duplicates(quants: list[QuantGroup]) -> None:
    """Two entries of one quant (a plain and an "UD-" upload, two sizes) keep apart by file name."""
    seen: dict[str, int] = {}
    for q in quants:
        seen[q.quant] = seen.get(q.quant, 0) + 1
    for q in quants:
        if seen[q.quant] > 1:
            q.quant = q.first.name
