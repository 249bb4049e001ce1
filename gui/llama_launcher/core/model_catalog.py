"""The model catalog: find GGUF files wherever users keep them, read them once, group and pair them.

Users keep models in LM Studio's folder, the Hugging Face cache, llama.cpp's download cache,
Unsloth Studio's folder or anywhere else; LM Studio only sees its own layout, which its users
complain about. The scan is recursive but bounded (depth, entries, symlink loops), and headers
of unchanged files come from a cache keyed by (path, size, mtime) that survives restarts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llama_launcher.core import paths
from llama_launcher.core.model_info import SPLIT_RE, ModelInfo, merge_block_parameters, read_model_info

MAX_DEPTH = 8
MAX_ENTRIES = 200_000
CACHE_VERSION = 2  # 2: vocab_size in arch_meta, block_parameters
DEMO_MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"


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


def find_gguf_files(
    roots: Iterable[Path], max_depth: int = MAX_DEPTH, max_entries: int = MAX_ENTRIES
) -> tuple[list[Path], list[str]]:
    """Recursively list ``*.gguf`` files; returns (files, notes about limits hit)."""
    files: list[Path] = []
    notes: list[str] = []
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[str] = set()
    entries = 0
    for root in roots:
        if root.is_file():
            key = os.path.normcase(os.path.abspath(root))
            if key not in seen_files and root.suffix.lower() == ".gguf":
                seen_files.add(key)
                files.append(root)
            continue
        stack: list[tuple[Path, int]] = [(root, 0)]
        while stack:
            folder, depth = stack.pop()
            try:
                st = folder.stat()
            except OSError:
                continue
            ident = (st.st_dev, st.st_ino)
            if ident in seen_dirs:  # symlink loop or the same folder reached twice
                continue
            seen_dirs.add(ident)
            try:
                with os.scandir(folder) as it:
                    children = list(it)
            except OSError:
                continue
            for entry in children:
                entries += 1
                if entries > max_entries:
                    notes.append(f"stopped after {max_entries} entries; add a narrower folder")
                    return files, notes
                name = entry.name
                try:
                    if entry.is_dir():
                        if name.startswith(".") and name not in (".cache",):
                            continue
                        if depth + 1 <= max_depth:
                            stack.append((Path(entry.path), depth + 1))
                        continue
                    if name.lower().endswith(".gguf") and entry.is_file():
                        key = os.path.normcase(entry.path)
                        if key not in seen_files:
                            seen_files.add(key)
                            files.append(Path(entry.path))
                except OSError:
                    continue
    return files, notes


class HeaderCache:
    """Per-file ModelInfo keyed by (path, size, mtime_ns), stored as JSON in the cache folder."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else paths.cache_dir() / "model-headers.json"
        self.entries: dict[str, dict[str, Any]] = {}
        self.dirty = False
        self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("version") == CACHE_VERSION and isinstance(data.get("files"), dict):
                self.entries = data["files"]
        except (OSError, ValueError):
            self.entries = {}

    def get(self, path: Path, size: int, mtime_ns: int) -> ModelInfo | None:
        hit = self.entries.get(str(path))
        if hit and hit.get("size") == size and hit.get("mtime_ns") == mtime_ns:
            try:
                return ModelInfo.from_dict(hit["info"])
            except (TypeError, KeyError):
                return None
        return None

    def put(self, path: Path, size: int, mtime_ns: int, info: ModelInfo) -> None:
        self.entries[str(path)] = {"size": size, "mtime_ns": mtime_ns, "info": info.to_dict()}
        self.dirty = True

    def save(self, keep: set[str] | None = None) -> None:
        if keep is not None:
            for stale in [k for k in self.entries if k not in keep]:
                del self.entries[stale]
                self.dirty = True
        if not self.dirty:
            return
        try:
            paths.ensure(self.path.parent)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"version": CACHE_VERSION, "files": self.entries}), encoding="utf-8")
            os.replace(tmp, self.path)
            self.dirty = False
        except OSError:
            pass  # a cache that cannot be written only costs speed


@dataclass
class CatalogResult:
    models: list[ModelInfo] = field(default_factory=list)  # launchable models and unreadable files
    projectors: list[ModelInfo] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    folders: list[ModelFolder] = field(default_factory=list)


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


def group_models(infos: list[ModelInfo]) -> tuple[list[ModelInfo], list[ModelInfo]]:
    """Group split parts into one entry (launchable from part 1) and pair projectors by folder."""
    projectors = [i for i in infos if i.is_projector and i.error is None]
    singles: list[ModelInfo] = []
    splits: dict[tuple[str, str, int], dict[int, ModelInfo]] = {}
    for info in infos:
        if info.is_projector and info.error is None:
            continue
        m = SPLIT_RE.match(info.file_name)
        if m and int(m.group("count")) > 1:
            key = (info.folder, m.group("stem"), int(m.group("count")))
            splits.setdefault(key, {})[int(m.group("no"))] = info
        else:
            singles.append(info)
    for (folder, stem, count), parts in splits.items():
        expected = [str(Path(folder) / f"{stem}-{n:05d}-of-{count:05d}.gguf") for n in range(1, count + 1)]
        missing = [p for n, p in enumerate(expected, start=1) if n not in parts]
        first = parts.get(1)
        if first is None:
            any_part = next(iter(parts.values()))
            entry = ModelInfo(
                path=expected[0],
                name=any_part.name if any_part.error is None else stem,
                file_name=Path(expected[0]).name,
                folder=folder,
                architecture=any_part.architecture,
                launchable=False,
                error=f"split model is missing part 1 of {count}; it can only be launched from part 1",
            )
        else:
            entry = dataclasses.replace(first)
        entry.split_count = count
        entry.split_parts = expected
        entry.missing_parts = missing
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
        if missing and entry.error is None:
            entry.error = f"split model is missing {len(missing)} of {count} parts: " + ", ".join(
                Path(m).name for m in missing[:3]
            ) + (" ..." if len(missing) > 3 else "")
        elif bad and entry.error is None:
            entry.error = f"part {Path(bad[0].path).name} is unreadable: {bad[0].error}"
        entry.launchable = entry.error is None
        singles.append(entry)
    by_folder: dict[str, list[str]] = {}
    for pj in projectors:
        by_folder.setdefault(pj.folder, []).append(pj.path)
    for info in singles:
        info.mmproj = sorted(by_folder.get(info.folder, []))
    singles.sort(key=lambda i: (i.name.lower(), i.path))
    return singles, projectors


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
    return result


def platform_reveal_command(path: str) -> list[str]:
    """The argv that shows a file in Finder / Explorer / the file manager (never through a shell)."""
    if sys.platform == "darwin":
        return ["open", "-R", path]
    if sys.platform == "win32":
        return ["explorer", "/select,", path]
    return ["xdg-open", str(Path(path).parent)]
