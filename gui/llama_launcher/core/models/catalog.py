"""The model catalog: find GGUF files wherever users keep them, read them once, group and pair them.

Users keep models in LM Studio's folder, the Hugging Face cache, llama.cpp's download cache,
Unsloth Studio's folder or anywhere else; LM Studio only sees its own layout, which its users
complain about. The scan is recursive but bounded (depth, entries, symlink loops), and headers
of unchanged files come from a cache keyed by (path, size, mtime) that survives restarts.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llama_launcher.core.models.gguf_header import file_kind
from llama_launcher.core.models.model_info import (
    MAX_LISTED_PARTS,
    SPLIT_RE,
    ModelInfo,
    merge_block_parameters,
    read_model_info,
)
from llama_launcher.core.models.sidecar import head_fits
from llama_launcher.core.state import paths
from llama_launcher.core.state.state_files import StateFileError, expect, read_json, save_json

MAX_DEPTH = 8
MAX_ENTRIES = 200_000
CACHE_VERSION = 4  # 2: vocabulary hash, speculator heads; 3: block_parameters, vocab_size in arch_meta; 4: sidecar heads
DEMO_MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"
# An unfinished download (core.hub.download): never a model, whatever it is called before the suffix.
PARTIAL_SUFFIX = ".llpartial"


@dataclass(frozen=True)
class ModelFolder:
    path: Path
    source: str  # "user", "LM Studio", "Hugging Face cache", ...


def default_folders(home: Path | None = None, env: dict[str, str] | None = None) -> list[ModelFolder]:
    """The usual model places that exist on this machine."""
    env = dict(os.environ) if env is None else env
    home = Path.home() if home is None else home
    candidates: list[ModelFolder] = [
        ModelFolder(home / ".lmstudio" / "models", "LM Studio"),
        ModelFolder(home / ".cache" / "lm-studio" / "models", "LM Studio"),
    ]
    if env.get("HF_HUB_CACHE"):
        candidates.append(ModelFolder(Path(env["HF_HUB_CACHE"]), "Hugging Face cache"))
    elif env.get("HF_HOME"):
        candidates.append(ModelFolder(Path(env["HF_HOME"]) / "hub", "Hugging Face cache"))
    candidates.append(ModelFolder(home / ".cache" / "huggingface" / "hub", "Hugging Face cache"))
    if env.get("LLAMA_CACHE"):
        candidates.append(ModelFolder(Path(env["LLAMA_CACHE"]), "llama.cpp cache"))
    candidates.append(ModelFolder(home / ".cache" / "llama.cpp", "llama.cpp cache"))
    candidates.append(ModelFolder(home / "Library" / "Caches" / "llama.cpp", "llama.cpp cache"))
    if env.get("LOCALAPPDATA"):
        candidates.append(ModelFolder(Path(env["LOCALAPPDATA"]) / "llama.cpp", "llama.cpp cache"))
    candidates.append(ModelFolder(home / ".unsloth" / "studio", "Unsloth Studio"))
    seen: set[str] = set()
    out = []
    for c in candidates:
        key = os.path.normcase(str(c.path))
        if key not in seen and c.path.is_dir():
            seen.add(key)
            out.append(c)
    return out


def demo_model_path() -> Path:
    return paths.demo_model_dir() / DEMO_MODEL_FILE


MAX_NOTES_PER_KIND = 5  # skipped entries named one per line; the rest are counted


class _SkipNotes:
    """One line per skipped entry, a few per kind, then a count: a folder of 100,000 broken links
    must not become 100,000 notes."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {}
        self.extra: dict[str, int] = {}

    def add(self, kind: str, line: str) -> None:
        kept = self.lines.setdefault(kind, [])
        if len(kept) < MAX_NOTES_PER_KIND:
            kept.append(line)
        else:
            self.extra[kind] = self.extra.get(kind, 0) + 1

    def render(self) -> list[str]:
        out: list[str] = []
        for kind, kept in self.lines.items():
            out += kept
            if self.extra.get(kind):
                out.append(f"... and {self.extra[kind]} more skipped ({kind})")
        return out


def _entry_kind(path: str) -> tuple[str, str] | None:
    """Why a directory entry that is neither a folder nor a regular file was skipped: (kind, line)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        try:
            target = os.readlink(path)
        except OSError:
            return ("unreadable", f"skipped {path}: it cannot be read ({exc.strerror or exc})")
        if exc.errno == errno.ELOOP:
            return ("symlink loop", f"skipped {path}: symlink loop (the link leads back to itself)")
        return ("broken symlink", f"skipped {path}: broken symlink (its target {target} does not exist)")
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return None
    return ("not a file", f"skipped {path}: {file_kind(st.st_mode)}, not a model file")


def find_gguf_files(
    roots: Iterable[Path], max_depth: int = MAX_DEPTH, max_entries: int = MAX_ENTRIES
) -> tuple[list[Path], list[str]]:
    """Recursively list ``*.gguf`` files; returns (files, notes: one line per thing skipped or limit hit).

    Named in the notes: broken symlinks, symlink loops, FIFOs and other non-files named ``.gguf``,
    folders that cannot be read and folders below the depth limit. Hidden folders (``.git``) are
    skipped quietly, and a folder reached twice (overlapping roots) is listed once.
    """
    files: list[Path] = []
    skipped = _SkipNotes()
    limits: list[str] = []
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[str] = set()
    entries = 0

    def add_file(path: Path) -> None:
        key = os.path.normcase(os.path.abspath(path))
        if key not in seen_files:
            seen_files.add(key)
            files.append(path)

    for root in roots:
        try:
            root_is_dir = root.is_dir()
        except OSError:
            root_is_dir = False
        if not root_is_dir:
            if not os.path.lexists(root):
                skipped.add("missing folder", f"skipped {root}: the folder does not exist (any more)")
                continue
            odd = _entry_kind(str(root))
            if odd is not None:
                skipped.add(*odd)
            elif root.suffix.lower() == ".gguf" and root.is_file():
                add_file(root)
            continue
        stack: list[tuple[Path, int, frozenset[tuple[int, int]]]] = [(root, 0, frozenset())]
        while stack:
            folder, depth, ancestors = stack.pop()
            try:
                st = folder.stat()
            except OSError as exc:
                skipped.add("unreadable folder", f"skipped {folder}: the folder cannot be read ({exc.strerror or exc})")
                continue
            ident = (st.st_dev, st.st_ino)
            if ident in ancestors:
                skipped.add("symlink loop", f"skipped {folder}: symlink loop (it leads back to a folder above it)")
                continue
            if ident in seen_dirs:  # the same folder reached twice (overlapping roots, two links)
                continue
            seen_dirs.add(ident)
            try:
                with os.scandir(folder) as it:
                    children = list(it)
            except OSError as exc:
                skipped.add("unreadable folder", f"skipped {folder}: the folder cannot be read ({exc.strerror or exc})")
                continue
            below = ancestors | {ident}
            for entry in children:
                entries += 1
                if entries > max_entries:
                    limits.append(f"stopped after {max_entries} entries; add a narrower folder")
                    return files, limits + skipped.render()
                name = entry.name
                try:
                    if entry.is_dir():
                        if name.startswith(".") and name not in (".cache",):
                            continue
                        if depth + 1 <= max_depth:
                            stack.append((Path(entry.path), depth + 1, below))
                        else:
                            skipped.add("too deep", f"skipped {entry.path}: deeper than {max_depth} folders below {root}")
                        continue
                    if name.endswith(PARTIAL_SUFFIX):
                        skipped.add("unfinished download", f"skipped {entry.path}: an unfinished download "
                                    "(Get models… or `llama-launcher download` resumes it)")
                        continue
                    gguf = name.lower().endswith(".gguf")
                    if gguf and entry.is_file():
                        add_file(Path(entry.path))
                    elif gguf or (entry.is_symlink() and "." not in name):
                        # not a regular file: a FIFO, a device, a broken link (one without a suffix may have been a folder)
                        odd = _entry_kind(entry.path)
                        if odd is not None:
                            skipped.add(*odd)
                except OSError as exc:
                    skipped.add(*(_entry_kind(entry.path) or
                                  ("unreadable", f"skipped {entry.path}: it cannot be read ({exc.strerror or exc})")))
    return files, limits + skipped.render()


def _cache_entries(data: Any) -> tuple[dict[str, dict[str, Any]], dict[str, ModelInfo]]:
    """Validate the header cache's content (any wrong type sets the whole file aside); the entries as
    stored, and the ModelInfo each one was validated into."""
    expect(data, dict, "the header cache")
    if data.get("version") != CACHE_VERSION:
        return {}, {}  # written by another version of the launcher: rebuilt, not corrupt
    files = expect(data.get("files"), dict, "'files'")
    infos = {}
    for key, entry in files.items():
        expect(entry, dict, f"the entry for {key[:80]}")
        for field_name in ("size", "mtime_ns"):
            if not isinstance(entry.get(field_name), int) or isinstance(entry.get(field_name), bool):
                raise StateFileError(f"the entry for {key[:80]} has no whole-number {field_name}")
        infos[key] = ModelInfo.from_dict(entry.get("info"))
    return files, infos


class HeaderCache:
    """Per-file ModelInfo keyed by (path, size, mtime_ns), stored as JSON in the cache folder."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else paths.cache_dir() / "model-headers.json"
        self.entries: dict[str, dict[str, Any]] = {}  # as stored in the file
        self._infos: dict[str, ModelInfo] = {}  # each entry's info, validated once
        self.dirty = False
        self._load()

    def _load(self) -> None:
        self.entries, self._infos = read_json(self.path, "the model header cache", _cache_entries) or ({}, {})

    def get(self, path: Path, size: int, mtime_ns: int) -> ModelInfo | None:
        key = str(path)
        hit = self.entries.get(key)
        if hit and hit.get("size") == size and hit.get("mtime_ns") == mtime_ns:
            info = self._infos.get(key)
            if info is None:
                try:
                    info = self._infos[key] = ModelInfo.from_dict(hit["info"])
                except (ValueError, KeyError):
                    return None
            return dataclasses.replace(info)  # a copy each time: callers set fields on what they get
        return None

    def put(self, path: Path, size: int, mtime_ns: int, info: ModelInfo) -> None:
        """Remember ``info`` for this (path, size, mtime), unless the loader could not take it back
        (NaN or infinite metadata, a NUL in a name): such a file is read again at the next scan."""
        key = str(path)
        self._infos.pop(key, None)  # validated from the stored entry when it is asked for
        try:
            stored = info.storable_dict()
        except ValueError:
            if self.entries.pop(key, None) is not None:
                self.dirty = True
            return
        self.entries[key] = {"size": size, "mtime_ns": mtime_ns, "info": stored}
        self.dirty = True

    def save(self, keep: set[str] | None = None) -> None:
        if keep is not None:
            for stale in [k for k in self.entries if k not in keep]:
                del self.entries[stale]
                self._infos.pop(stale, None)
                self.dirty = True
        if not self.dirty:
            return
        # a cache that cannot be written only costs speed: said once, and the scan carries on
        if save_json(self.path, {"version": CACHE_VERSION, "files": self.entries}, "the model header cache"):
            self.dirty = False


@dataclass
class CatalogResult:
    models: list[ModelInfo] = field(default_factory=list)  # launchable models and unreadable files
    projectors: list[ModelInfo] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    folders: list[ModelFolder] = field(default_factory=list)
    heads: list[ModelInfo] = field(default_factory=list)  # speculator heads: listed under the models they fit

    def drafters(self) -> list[ModelInfo]:
        """Every file that may draft for a model: the models (draft models) and the heads."""
        return self.models + self.heads


def read_files(
    files: list[Path], cache: HeaderCache | None, progress: Callable[[int, int], None] | None = None
) -> list[ModelInfo]:
    infos = []
    for i, f in enumerate(files):
        try:
            st = f.stat()
        except OSError:
            infos.append(read_model_info(f))  # gone or unreadable: an entry with the one-line reason
        else:
            info = cache.get(f, st.st_size, st.st_mtime_ns) if cache is not None else None
            if info is None:
                info = read_model_info(f)
                if cache is not None:
                    cache.put(f, st.st_size, st.st_mtime_ns, info)
            infos.append(info)
        if progress is not None:
            progress(i + 1, len(files))
    return infos


def _missing_numbers(present: list[int], count: int, limit: int) -> list[int]:
    """The first ``limit`` part numbers in 1..count that are not in ``present`` (sorted): work by what exists."""
    out: list[int] = []
    expected = 1
    for no in present + [count + 1]:
        while expected < no and len(out) < limit:
            out.append(expected)
            expected += 1
        if len(out) >= limit:
            break
        expected = no + 1
    return out


def group_models(infos: list[ModelInfo]) -> tuple[list[ModelInfo], list[ModelInfo]]:
    """Group split parts into one entry (launchable from part 1) and pair projectors by folder.

    Speculator heads stay in the first list here (``split_heads`` takes them out and pairs them).

    The bookkeeping follows the parts that exist: a file named ``x-00001-of-99999.gguf`` costs one
    entry with a count of missing parts and the first few of their names, never 99,999 paths.
    """
    projectors = [i for i in infos if i.is_projector and i.error is None]
    singles: list[ModelInfo] = []
    splits: dict[tuple[str, str, int], dict[int, ModelInfo]] = {}
    for info in infos:
        if info.is_projector and info.error is None:
            continue
        m = SPLIT_RE.match(info.file_name)
        if m and int(m.group("count")) > 1:
            count, no = int(m.group("count")), int(m.group("no"))
            if not 1 <= no <= count:
                if info.error is None:
                    info = dataclasses.replace(info, launchable=False,
                                               error=f"split part number {no} is outside 1..{count}")
                singles.append(info)
                continue
            key = (info.folder, m.group("stem"), count)
            splits.setdefault(key, {})[no] = info
        else:
            singles.append(info)
    for (folder, stem, count), parts in splits.items():
        def part_path(n: int, folder: str = folder, stem: str = stem, count: int = count) -> str:
            return str(Path(folder) / f"{stem}-{n:05d}-of-{count:05d}.gguf")

        present = sorted(parts)
        missing_count = count - len(present)
        missing = [part_path(n) for n in _missing_numbers(present, count, MAX_LISTED_PARTS)]
        first = parts.get(1)
        if first is None:
            any_part = parts[present[0]]
            entry = ModelInfo(
                path=part_path(1),
                name=any_part.name if any_part.error is None else stem,
                file_name=Path(part_path(1)).name,
                folder=folder,
                architecture=any_part.architecture,
                launchable=False,
                error=f"split model is missing part 1 of {count}; it can only be launched from part 1",
            )
        else:
            entry = dataclasses.replace(first)
        entry.split_count = count
        entry.split_parts = [parts[n].path for n in present]
        entry.missing_parts = missing
        entry.missing_count = missing_count
        entry.file_size = sum(p.file_size for p in parts.values())
        if all(p.parameters is not None for p in parts.values()) and parts:
            entry.parameters = sum(p.parameters or 0 for p in parts.values())
            entry.trunk_parameters = sum(p.trunk_parameters or 0 for p in parts.values())
            entry.mtp_parameters = sum(p.mtp_parameters or 0 for p in parts.values())
            entry.block_parameters = merge_block_parameters([p.block_parameters for p in parts.values()])
            if any(p.mtp_parameters for p in parts.values()) and not entry.is_mtp:
                entry.is_mtp = True
                entry.mtp_evidence = "tensors: blk.N.nextn.* present"
        bad = [p for p in parts.values() if p.error]
        if missing_count and entry.error is None:
            entry.error = f"split model is missing {missing_count} of {count} parts: " + ", ".join(
                Path(m).name for m in missing[:3]
            ) + (" ..." if missing_count > 3 else "")
        elif bad and entry.error is None:
            entry.error = f"part {Path(bad[0].path).name} is unreadable: {bad[0].error}"
        entry.launchable = entry.error is None
        singles.append(entry)
    by_folder: dict[str, list[str]] = {}
    for pj in projectors:
        by_folder.setdefault(pj.folder, []).append(pj.path)
    for info in singles:
        info.mmproj = sorted(by_folder.get(info.folder, []) or by_folder.get(_snapshot_root(info.folder), []))
    singles.sort(key=lambda i: (i.name.lower(), i.path))
    return singles, projectors


def split_heads(entries: list[ModelInfo]) -> tuple[list[ModelInfo], list[ModelInfo]]:
    """(models, heads): each head leaves the model list and is named in ``heads`` of every model it fits."""
    models = [m for m in entries if m.head is None or m.error]
    heads = [m for m in entries if m.head is not None and not m.error]
    for m in models:
        m.heads = [h.path for h in heads if not m.error and head_fits(m, h)[0]] if heads else []
    return models, heads


def _snapshot_root(folder: str) -> str:
    """A sub-folder of a Hugging Face cache snapshot (``snapshots/<commit>/Q6_K``: split quants often sit in a
    folder named after the quant) pairs with the projector at the repository's root; elsewhere, no folder."""
    p = Path(folder)
    return str(p.parent) if p.parent.parent.name == "snapshots" else ""


def scan(
    folders: Iterable[Path | str] = (),
    include_defaults: bool = True,
    cache: HeaderCache | None = None,
    progress: Callable[[int, int], None] | None = None,
    save_cache: bool = True,
) -> CatalogResult:
    """Scan user folders (and the default places); the demo model is listed only if nothing else is."""
    result = CatalogResult()
    result.folders = [ModelFolder(Path(f).expanduser(), "your folder") for f in folders]
    if include_defaults:
        result.folders += default_folders()
    if cache is None:
        cache = HeaderCache()
    files, notes = find_gguf_files([f.path for f in result.folders])
    result.notes.extend(notes)
    infos = read_files(files, cache, progress)
    models, projectors = group_models(infos)
    models, heads = split_heads(models)
    if include_defaults and not any(m.launchable for m in models):
        demo = demo_model_path()
        if demo.is_file():
            models += read_files([demo], cache)
            result.folders.append(ModelFolder(demo.parent, "demo model"))
            result.notes.append("no models of your own were found: showing the demo model")
    if save_cache:
        cache.save(keep={str(f) for f in files} | {str(demo_model_path())})
    result.models = models
    result.projectors = projectors
    result.heads = heads
    return result


def reveal_words(platform: str | None = None) -> str:
    """What Reveal does on this OS (platform_reveal_command), in the words its button's tooltip says."""
    platform = sys.platform if platform is None else platform
    if platform in ("darwin", "win32"):
        return f"Show the selected model in {'Finder' if platform == 'darwin' else 'File Explorer'}"
    return "Open the selected model's folder in your file manager"


def platform_reveal_command(path: str) -> list[str]:
    """The argv that shows a file in Finder / Explorer / the file manager (never through a shell)."""
    if sys.platform == "darwin":
        return ["open", "-R", path]
    if sys.platform == "win32":
        return ["explorer", "/select,", path]
    return ["xdg-open", str(Path(path).parent)]
