"""One repository judged for this machine: its quants with their sizes, headers read remotely, a fit
verdict each, the recommended one, and the files a download of a quant brings along.

The window's "Get models…" dialog and ``llama-launcher download`` both start here, so they show the same
verdicts for the same repository and machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.hub.client import HubClient, HubError, RemoteFile, RepoListing
from llama_launcher.core.hub.fit import Verdict, judge, recommend
from llama_launcher.core.hub.remote_header import ByteCounter, read_quant
from llama_launcher.core.hub.repo_files import QuantGroup, RepoModels, group_repo
from llama_launcher.core.llama_server.probe import Capabilities
from llama_launcher.core.models.model_info import ModelInfo


@dataclass
class QuantReport:
    group: QuantGroup
    info: ModelInfo
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        return {**self.verdict.to_dict(), "files": [f.path for f in self.group.files],
                "architecture": self.info.architecture, "parameters": self.info.parameters,
                "nextn_predict_layers": self.info.nextn_predict_layers}


@dataclass
class RepoReport:
    listing: RepoListing
    models: RepoModels
    quants: list[QuantReport] = field(default_factory=list)
    recommended: str | None = None  # the quant's name
    why: str = ""
    bytes_read: int = 0  # what deciding cost: the header bytes fetched from the Hub
    vision: bool = False  # the repository has a projector (mmproj): the model can see images

    def quant(self, name: str | None) -> QuantReport | None:
        if name is None:
            return None
        group = self.models.find(name)
        return next((q for q in self.quants if q.group is group), None)

    def to_dict(self) -> dict[str, Any]:
        return {"repo": self.listing.repo_id, "commit": self.listing.commit, "gated": self.listing.gated,
                "quants": [q.to_dict() for q in self.quants], "recommended": self.recommended, "why": self.why,
                "mtp_heads": [h.path for h in self.models.mtp_heads],
                "projectors": [p.path for p in self.models.projectors], "header_bytes_read": self.bytes_read}


def judge_repo(client: HubClient, repo_id: str, hw: Hardware, caps: Capabilities | None = None,
               ctx: int | None = None, counter: ByteCounter | None = None) -> RepoReport:
    """List, read every quant's header remotely, judge each; raises :class:`HubError` (one line)."""
    listing = client.listing(repo_id)
    models = group_repo(listing.files)
    if not models.quants:
        others = ", ".join(f.name for f in listing.files[:4]) or "no files"
        raise HubError(f"{repo_id} has no GGUF model to download (it holds {others}"
                       f"{' …' if len(listing.files) > 4 else ''}); llama.cpp needs a GGUF repository, often "
                       "named ...-GGUF")
    counter = counter or ByteCounter()
    before = counter.total
    report = RepoReport(listing, models, vision=bool(models.projectors))
    infos = _read_all(client, repo_id, listing.commit, models.quants, counter)
    errors = {i.error for i in infos}
    if len(errors) == 1 and None not in errors and any(w in str(errors) for w in ("gated", "401", "403", "reach")):
        raise HubError(str(errors.pop()))  # one reason for every file (gated, logged out, offline): say it once
    for group, info in zip(models.quants, infos, strict=True):
        report.quants.append(QuantReport(group, info, judge(info, group, hw, caps, ctx, models)))
    best, report.why = recommend([q.verdict for q in report.quants])
    report.recommended = best.quant if best is not None else None
    report.bytes_read = counter.total - before
    return report


def _read_all(client: HubClient, repo_id: str, commit: str, quants: list[QuantGroup],
              counter: ByteCounter) -> list[ModelInfo]:
    """Every quant's header: one read whole (a single-file quant when there is one), the others from their
    first 256 KiB, completed from it when they are the same model (Qwen's 151k-token vocabulary and its
    merges make each header ~7.6 MB; four read whole would cost 30 MB)."""
    order = sorted(range(len(quants)), key=lambda i: (quants[i].split_count > 1, quants[i].size))
    infos: list[ModelInfo | None] = [None] * len(quants)
    reference: ModelInfo | None = None
    for i in order:
        info = read_quant(client, repo_id, commit, quants[i], counter, reference)
        if reference is None and info.error is None and info.parameters:
            reference = info
        infos[i] = info
    return [i for i in infos if i is not None]


def files_for(report: RepoReport, quant: str, mtp_head: bool = True, projector: bool = True) -> list[tuple[RemoteFile, str]]:
    """Every file a download of ``quant`` brings: all its parts, the MTP head and the projector when asked."""
    q = report.quant(quant)
    if q is None:
        names = ", ".join(x.group.quant for x in report.quants)
        raise HubError(f"{report.listing.repo_id} has no quant {quant!r} (it has {names})")
    if not q.group.complete:
        raise HubError(f"{q.group.quant} lacks {q.group.missing_parts} of its {q.group.split_count} parts on the Hub")
    out: list[tuple[RemoteFile, str]] = [(f, "model") for f in q.group.files]
    head = report.models.mtp_head_for(q.group) if mtp_head else None
    if head is not None and q.info.nextn_predict_layers <= 0:
        out.append((head, "MTP head"))
    proj = report.models.projector() if projector else None
    if proj is not None:
        out.append((proj, "projector"))
    return out


