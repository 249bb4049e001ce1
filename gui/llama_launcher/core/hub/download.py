"""Downloading a chosen quant with everything it needs, resumable across cancels, crashes and restarts.

``huggingface_hub`` retries a dropped connection inside one call, but its ``.incomplete`` file is per
process and deleted on error, so it cannot resume after a cancel or a crash. Here each file goes to a
stable partial file of our own, named after the content's SHA-256 and ending in
:data:`~llama_launcher.core.models.catalog.PARTIAL_SUFFIX` (the catalog never lists it as a model), fetched
with ``Range: bytes=N-`` from where it stopped. Once the size and the hash match what the Hub's listing
says, it is placed:

- into the Hugging Face cache, as the library lays it out: the file becomes ``blobs/<sha256>`` (the name
  ``hf_hub_download`` gives an LFS blob), then ``hf_hub_download`` itself finds the blob and makes the
  ``snapshots/<commit>/<path>`` link and the ``refs`` entry (one HEAD request, no second download);
- or into a models folder, ``<folder>/<repo name>/<file name>``: split parts, head and projector together,
  where the catalog groups and pairs them.

Disk space is checked before the first byte; a transfer that sends nothing for ``stall_s`` seconds stops
with the part already fetched kept; a file whose content changes while it downloads, or a server whose
sizes disagree with the listing, stops with words and no file that looks like a model.
"""

from __future__ import annotations

import collections
import hashlib
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.file_download import hf_hub_download, repo_folder_name
from huggingface_hub.utils import get_session, hf_raise_for_status

from llama_launcher.core.hub.client import HubClient, RemoteFile, explain
from llama_launcher.core.models.catalog import PARTIAL_SUFFIX
from llama_launcher.core.state.cancel import CancelToken
from llama_launcher.core.state.errors import UserFacing
from llama_launcher.core.state.units import file_size

CHUNK = 1 << 20
STALL_S = 30.0
RETRIES = 3  # dropped connections resumed automatically within one run
IDLE_S = 2.0  # the longest a read blocks: a cancel (the window's, or quitting) is seen within this
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class DownloadError(UserFacing):
    """The download stopped; the message is one line (what happened, what is kept, what to do)."""


class DownloadCancelled(DownloadError):
    pass


class _Idle(Exception):
    """A read waited IDLE_S with nothing arriving."""


@dataclass
class Item:
    file: RemoteFile
    role: str  # "model", "MTP head", "projector"
    final: Path  # the blob in the cache, or the file in the models folder
    partial: Path

    @property
    def hasher(self) -> Any:
        return hashlib.sha256() if self.file.sha256 else hashlib.sha1()  # noqa: S324 - git's blob id is SHA-1

    @property
    def expected_hash(self) -> str:
        return self.file.sha256 or self.file.blob_id


@dataclass
class Progress:
    done: int
    total: int
    speed: float  # bytes per second over the last few seconds
    file: str
    kept: int = 0  # bytes that were already on disk when this run began (never fetched again)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def eta_s(self) -> float | None:
        return (self.total - self.done) / self.speed if self.speed > 0 else None

    def text(self) -> str:
        eta = self.eta_s
        left = "" if eta is None else f", {duration(eta)} left"
        kept = f" ({size_text(self.kept)} were already on disk)" if self.kept else ""
        return (f"{self.file}: {size_text(self.done)} of {size_text(self.total)} ({self.fraction * 100:.0f}%), "
                f"{size_text(int(self.speed))}/s{left}{kept}")

    def to_dict(self) -> dict[str, Any]:
        return {"event": "progress", "file": self.file, "done": self.done, "total": self.total,
                "fraction": round(self.fraction, 4), "speed": int(self.speed), "kept": self.kept,
                "eta_s": None if self.eta_s is None else round(self.eta_s, 1)}


def size_text(n: int) -> str:
    """Sizes of downloads in decimal units, like every file size (core/state/units.py)."""
    return file_size(n)


def duration(s: float) -> str:
    s = int(s + 0.5)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def cache_storage(cache_dir: str | os.PathLike[str], repo_id: str) -> Path:
    """The repository's folder in the Hugging Face cache (``models--owner--name``), named by the library."""
    return Path(cache_dir) / repo_folder_name(repo_id=repo_id, repo_type="model")


def plan_items(repo_id: str, files: list[tuple[RemoteFile, str]], cache_dir: str | None,
               folder: Path | None) -> list[Item]:
    """Where each file goes: the cache's blob (``cache_dir``) or ``folder/<repo name>/``."""
    items = []
    for f, role in files:
        key = (f.sha256 or f.blob_id or "nohash")[:16]
        if folder is not None:
            final = folder / repo_id.rsplit("/", 1)[-1] / f.name
            partial = final.with_name(f"{f.name}.{key}{PARTIAL_SUFFIX}")
        else:
            assert cache_dir is not None
            blobs = cache_storage(cache_dir, repo_id) / "blobs"
            final = blobs / (f.sha256 or f.blob_id)
            partial = blobs / f"{final.name}.{f.name}{PARTIAL_SUFFIX}"  # the name finds an older version's part
        items.append(Item(f, role, final, partial))
    return items


def _existing_parent(p: Path) -> Path:
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


def _done(item: Item) -> bool:
    try:
        return item.final.stat().st_size == item.file.size
    except OSError:
        return False


def _partial_size(item: Item) -> int:
    try:
        n = item.partial.stat().st_size
    except OSError:
        return 0
    return n if n <= item.file.size else 0


def check_space(items: list[Item]) -> int:
    """Bytes still to fetch; raises when the disk holding them lacks the room (said before the first byte)."""
    need: dict[Path, int] = {}
    for it in items:
        if not _done(it):
            root = _existing_parent(it.final.parent)
            need[root] = need.get(root, 0) + it.file.size - _partial_size(it)
    for root, n in need.items():
        free = shutil.disk_usage(root).free
        if n > free:
            raise DownloadError(f"not enough disk space in {root}: the download needs {size_text(n)} more and "
                                f"{size_text(free)} is free; free some space or choose another folder")
    return sum(need.values())


def stale_partials(item: Item) -> list[Path]:
    """Partial files of an older version of the same file (the Hub's content changed since they began):
    ``<name>.<hash>.llpartial`` in a models folder, ``<sha256>.<name>.llpartial`` in the cache's blobs."""
    if not item.partial.parent.is_dir():
        return []
    name, suffix = item.file.name, PARTIAL_SUFFIX
    in_cache = item.partial.parent.name == "blobs"
    out = []
    for p in item.partial.parent.iterdir():
        if p == item.partial or not p.name.endswith(suffix):
            continue
        if (p.name.endswith(f".{name}{suffix}") if in_cache else p.name.startswith(f"{name}.")):
            out.append(p)
    return out


class Transfer:
    """One download run; ``cancel`` (a threading.Event or a CancelToken) may be set from any thread and
    stops it within one chunk, or IDLE_S while nothing arrives, keeping what arrived."""

    def __init__(self, client: HubClient, repo_id: str, commit: str, items: list[Item],
                 progress: Callable[[Progress], None] | None = None, cancel: threading.Event | CancelToken | None = None,
                 stall_s: float = STALL_S, note: Callable[[str], None] | None = None) -> None:
        self.client, self.repo_id, self.commit, self.items = client, repo_id, commit, items
        self.progress_cb, self.cancel = progress, cancel or threading.Event()
        self.stall_s, self.note = stall_s, note or (lambda _text: None)
        self.total = sum(it.file.size for it in items)
        self.done = 0
        self.kept = 0
        self._samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=64)
        self._last_report = 0.0
        self._h: Any = None  # the current file's hash so far
        self._last_done = 0

    # --- the run --------------------------------------------------------------------------------
    def run(self) -> list[Path]:
        """Fetch, verify and place every item; the placed paths in order (the model's part 1 first)."""
        for it in self.items:
            for old in stale_partials(it):
                old.unlink(missing_ok=True)
                self.note(f"{it.file.name} changed on the Hub since its download began: the old part was deleted")
        check_space(self.items)
        self.done = self.kept = sum(it.file.size if _done(it) else _partial_size(it) for it in self.items)
        self._report(self.items[0].file.name if self.items else "", force=True)
        placed = []
        for it in self.items:
            if not _done(it):
                self._fetch(it)
            placed.append(self._place(it))
        self._report(self.items[-1].file.name if self.items else "", force=True)
        return placed

    def _fetch(self, it: Item) -> None:
        it.final.parent.mkdir(parents=True, exist_ok=True)
        self._h = it.hasher
        offset = _partial_size(it)
        if offset == 0:
            it.partial.unlink(missing_ok=True)
        else:
            self._hash_existing(it, self._h, offset)
        attempts, idle_since = 0, time.monotonic()
        while offset < it.file.size:
            before = offset
            try:
                offset = self._stream(it, offset)
            except _Idle:  # nothing for a moment: a cancel counts now; a longer silence is a stall
                offset = _partial_size(it)
                self._report(it.file.name, force=True)  # the speed falls as the silence lasts
                if self.cancel.is_set():
                    raise DownloadCancelled(self._cancel_words()) from None
                if offset == before and time.monotonic() - idle_since >= self.stall_s:
                    raise DownloadError(f"{it.file.name}: the transfer stalled (no data for {self.stall_s:.0f} s from "
                                        f"the server); {size_text(offset)} kept: resume to continue") from None
                if offset != before:
                    idle_since = time.monotonic()
                continue
            except (httpx2.RemoteProtocolError, httpx2.ReadError, httpx2.ConnectError) as exc:
                offset = _partial_size(it)
                attempts += 1
                if attempts > RETRIES:
                    raise DownloadError(f"{it.file.name}: {explain(exc, self.client.endpoint, self.repo_id)}; "
                                        f"{size_text(offset)} kept: resume to continue") from None
                continue
            idle_since = time.monotonic()
            if offset == before:
                attempts += 1
                if attempts > RETRIES:
                    raise DownloadError(f"{it.file.name}: the server sends no more data at byte {offset:,} of "
                                        f"{it.file.size:,}; what arrived is kept: resume later")
        h = self._h
        if h.hexdigest() != it.expected_hash:
            it.partial.unlink(missing_ok=True)
            raise DownloadError(f"{it.file.name} does not match the Hub's {'SHA-256' if it.file.sha256 else 'hash'} "
                                "(the file changed on the Hub, or was damaged on the way): the download was deleted; "
                                "open the repository again and download it anew")

    def _hash_existing(self, it: Item, h: Any, n: int) -> None:
        with open(it.partial, "rb") as fh:
            left = n
            while left:
                if self.cancel.is_set():
                    raise DownloadCancelled(self._cancel_words())
                chunk = fh.read(min(CHUNK * 8, left))
                if not chunk:
                    break
                h.update(chunk)
                left -= len(chunk)

    def _stream(self, it: Item, offset: int) -> int:
        """One ranged GET from ``offset``, written and hashed as it arrives; the new offset."""
        url = self.client.resolve_url(self.repo_id, it.file.path, self.commit)
        headers = dict(self.client.headers(), Range=f"bytes={offset}-")
        headers["Accept-Encoding"] = "identity"  # as the library asks: sizes are the file's, not a compressed one's
        # reads wait at most IDLE_S, so a cancel is seen even while the server sends nothing
        timeout = httpx2.Timeout(20.0, read=min(IDLE_S, self.stall_s))
        try:
            with get_session().stream("GET", url, headers=headers, timeout=timeout, follow_redirects=True) as r:
                hf_raise_for_status(r)
                self._check_answer(it, r, offset)
                if r.status_code == 200 and offset:  # the server ignored the range: start the file again
                    it.partial.unlink(missing_ok=True)
                    self.done -= offset
                    offset, self._h = 0, it.hasher
                with open(it.partial, "ab", buffering=0) as fh:  # on disk as it arrives: a kill loses nothing written
                    for chunk in r.iter_bytes():  # as it arrives: a stall loses nothing buffered
                        if self.cancel.is_set():
                            raise DownloadCancelled(self._cancel_words())
                        if offset + len(chunk) > it.file.size:
                            raise DownloadError(f"{it.file.name}: the server sent more than the {it.file.size:,} bytes "
                                                "the listing gives: its sizes cannot be trusted; nothing was kept")
                        fh.write(chunk)
                        self._h.update(chunk)
                        offset += len(chunk)
                        self.done += len(chunk)
                        self._report(it.file.name)
        except httpx2.ReadTimeout:
            raise _Idle() from None
        except httpx2.TimeoutException:
            raise DownloadError(f"{it.file.name}: {_host(url)} did not answer within 20 s; "
                                f"{size_text(_partial_size(it))} kept: resume to continue") from None
        except HfHubHTTPError as exc:
            raise DownloadError(f"{it.file.name}: {explain(exc, self.client.endpoint, self.repo_id)}") from None
        except DownloadError as exc:
            if "cannot be trusted" in str(exc):
                it.partial.unlink(missing_ok=True)
            raise
        return offset

    def _check_answer(self, it: Item, r: httpx2.Response, offset: int) -> None:
        """The Hub's redirect names the content (``X-Linked-Etag``: the SHA-256 for LFS files) and the
        range answer the file's size (``Content-Range``): both must agree with the listing."""
        linked = next((x.headers.get("X-Linked-Etag") for x in r.history if x.headers.get("X-Linked-Etag")), None)
        if linked and linked.strip('"').removeprefix("W/").strip('"') != it.expected_hash:
            it.partial.unlink(missing_ok=True)
            raise DownloadError(f"{it.file.name} changed on the Hub while it downloaded (a new version was "
                                "uploaded): the part fetched was deleted; open the repository again")
        if r.status_code == 206:
            m = _CONTENT_RANGE.match(r.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != offset or (m.group(3) != "*" and int(m.group(3)) != it.file.size):
                raise DownloadError(f"{it.file.name}: the server's size ({r.headers.get('Content-Range', '?')[:60]}) "
                                    f"disagrees with the listing's {it.file.size:,} bytes: its sizes cannot be "
                                    "trusted; nothing was kept")
        elif r.status_code == 200:
            length = r.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) != it.file.size:
                raise DownloadError(f"{it.file.name}: the server says {int(length):,} bytes, the listing "
                                    f"{it.file.size:,}: its sizes cannot be trusted; nothing was kept")
        else:
            raise DownloadError(f"{it.file.name}: the server answered {r.status_code} to a download request")

    def _place(self, it: Item) -> Path:
        if it.partial.exists():
            os.replace(it.partial, it.final)
        if it.final.parent.name != "blobs":
            return it.final
        try:  # the blob is in place: the library links it into the snapshot (a HEAD request, no download)
            pointer = Path(hf_hub_download(self.repo_id, it.file.path, revision=self.commit,
                                           cache_dir=self.client.cache_dir, endpoint=self.client.endpoint))
            self._ref_main()
            return pointer
        except (HfHubHTTPError, httpx2.HTTPError, OSError) as exc:
            raise DownloadError(f"{it.file.name} is downloaded and verified, but could not be linked into the "
                                f"cache: {explain(exc, self.client.endpoint, self.repo_id)}; run it again") from None

    def _ref_main(self) -> None:
        """``refs/main`` names the commit the listing was of (the default branch's, when it was listed), as
        the cache layout has it, so tools that ask for "main" offline find the files; a ref another tool
        wrote (perhaps to a newer commit) is left alone. hf_hub_download writes refs only for branch names."""
        ref = cache_storage(self.client.cache_dir, self.repo_id) / "refs" / "main"
        if not ref.exists():
            ref.parent.mkdir(parents=True, exist_ok=True)
            ref.write_text(self.commit)

    # --- progress -------------------------------------------------------------------------------
    def _cancel_words(self) -> str:
        return (f"cancelled: {size_text(self.done)} of {size_text(self.total)} kept; "
                "download again to resume where it stopped")

    def _report(self, name: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_report < 0.2 and self.done - self._last_done < self.total / 100:
            return  # at most 5 reports a second, and at least one per 1% (a fast burst then a stall shows right)
        self._last_report, self._last_done = now, self.done
        self._samples.append((now, self.done))
        while len(self._samples) > 2 and now - self._samples[0][0] > 5.0:
            self._samples.popleft()
        t0, d0 = self._samples[0]
        speed = (self.done - d0) / (now - t0) if now > t0 else 0.0
        if self.progress_cb is not None:
            self.progress_cb(Progress(self.done, self.total, max(speed, 0.0), name, self.kept))


def _host(url: str) -> str:
    from urllib.parse import urlparse

    return urlparse(url).netloc
