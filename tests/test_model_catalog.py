"""Catalog: recursive scan with limits, split grouping, projector pairing, MTP evidence, cache."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from llama_launcher.core.models import catalog as model_catalog
from llama_launcher.core.models.catalog import HeaderCache, default_folders, find_gguf_files, scan

from gguf_factory import write_model


def test_scan_lists_models_errors_and_projectors(tmp_path: Path) -> None:
    write_model(tmp_path / "a" / "good.gguf", name="Good")
    write_model(tmp_path / "a" / "mmproj-good.gguf", arch="clip", name="proj")
    (tmp_path / "a" / "broken.gguf").write_bytes(b"not a gguf at all")
    write_model(tmp_path / "b" / "deep" / "er" / "mtp.gguf", arch="qwen35", name="With MTP", blocks=3, nextn=1)
    write_model(tmp_path / "b" / "Qwen-4B-MTP.gguf", name=None)
    (tmp_path / "b" / "notes.txt").write_text("ignore me")
    res = scan([tmp_path], include_defaults=False, cache=HeaderCache(tmp_path / "cache.json"))
    by = {m.file_name: m for m in res.models}
    assert set(by) == {"good.gguf", "broken.gguf", "mtp.gguf", "Qwen-4B-MTP.gguf"}
    assert [p.file_name for p in res.projectors] == ["mmproj-good.gguf"]
    assert by["good.gguf"].mmproj == [str(tmp_path / "a" / "mmproj-good.gguf")]
    assert by["good.gguf"].has_chat_template and by["good.gguf"].launchable
    assert by["broken.gguf"].error and not by["broken.gguf"].launchable
    mtp = by["mtp.gguf"]
    assert mtp.is_mtp and mtp.nextn_predict_layers == 1 and "metadata" in (mtp.mtp_evidence or "")
    assert mtp.trunk_parameters is not None and mtp.parameters is not None and mtp.trunk_parameters < mtp.parameters
    tag = by["Qwen-4B-MTP.gguf"]
    assert tag.name == "Qwen-4B-MTP"  # no general.name: the file name
    assert tag.is_mtp and "weaker" in (tag.mtp_evidence or "") and tag.nextn_predict_layers == 0


def test_split_models_are_grouped_and_missing_parts_reported(tmp_path: Path) -> None:
    for i in (1, 2, 3):
        write_model(tmp_path / f"big-0000{i}-of-00003.gguf", name="Big", split=(i, 3))
    for i in (1, 3):
        write_model(tmp_path / f"gap-0000{i}-of-00003.gguf", name="Gap", split=(i, 3))
    write_model(tmp_path / "nohead-00002-of-00002.gguf", name="NoHead", split=(2, 2))
    res = scan([tmp_path], include_defaults=False, cache=HeaderCache(tmp_path / "c.json"))
    by = {m.name: m for m in res.models}
    big = by["Big"]
    assert big.path.endswith("big-00001-of-00003.gguf") and big.split_count == 3 and big.launchable
    assert big.file_size == sum(p.stat().st_size for p in tmp_path.glob("big-*.gguf"))
    single = write_model(tmp_path / "x" / "single.gguf")
    assert big.parameters == 3 * scan([single.parent], include_defaults=False, cache=HeaderCache(tmp_path / "d.json")).models[0].parameters
    gap = by["Gap"]
    assert not gap.launchable and gap.missing_parts == [str(tmp_path / "gap-00002-of-00003.gguf")]
    assert "missing 1 of 3" in (gap.error or "")
    nohead = next(m for m in res.models if "nohead" in m.path)
    assert not nohead.launchable and "part 1" in (nohead.error or "")


def test_symlink_loops_depth_and_entry_limits(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_model(root / "m.gguf")
    (root / "loop").symlink_to(root, target_is_directory=True)
    deep = root
    for i in range(12):
        deep = deep / f"d{i}"
    write_model(deep / "too-deep.gguf")
    files, notes = find_gguf_files([root], max_depth=8)
    assert [f.name for f in files] == ["m.gguf"]
    files, notes = find_gguf_files([root], max_entries=3)
    assert notes and "stopped after 3 entries" in notes[0]


def test_cache_serves_unchanged_files_and_survives_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = write_model(tmp_path / "m" / "one.gguf", name="One")
    cache_file = tmp_path / "cache.json"
    scan([tmp_path / "m"], include_defaults=False, cache=HeaderCache(cache_file))
    assert json.loads(cache_file.read_text())["files"]
    calls = []
    real = model_catalog.read_model_info
    monkeypatch.setattr(model_catalog, "read_model_info", lambda p: calls.append(p) or real(p))
    res = scan([tmp_path / "m"], include_defaults=False, cache=HeaderCache(cache_file))  # a "restart"
    assert calls == [] and res.models[0].name == "One"
    write_model(f, name="Changed")
    os.utime(f, (time.time() + 10, time.time() + 10))
    res = scan([tmp_path / "m"], include_defaults=False, cache=HeaderCache(cache_file))
    assert len(calls) == 1 and res.models[0].name == "Changed"


def test_a_cached_entry_is_validated_once_and_each_hit_is_its_own_copy(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    f = write_model(tmp_path / "m" / "one.gguf", name="One")
    cache_file = tmp_path / "cache.json"
    scan([tmp_path / "m"], include_defaults=False, cache=HeaderCache(cache_file))
    stored = cache_file.read_text()
    built = []
    real = model_catalog.ModelInfo.from_dict
    monkeypatch.setattr(model_catalog.ModelInfo, "from_dict", lambda data: built.append(1) or real(data))
    cache = HeaderCache(cache_file)
    assert len(built) == 1  # validated at load
    st = f.stat()
    first, second = (cache.get(f, st.st_size, st.st_mtime_ns) for _ in range(2))
    assert len(built) == 1 and first == second and first is not second and first is not None
    first.name = "changed by a caller"
    third = cache.get(f, st.st_size, st.st_mtime_ns)
    assert third is not None and third.name == "One"
    cache.save()
    assert cache_file.read_text() == stored  # nothing changed: nothing written, the format is as it was


def test_corrupt_cache_file_is_ignored(tmp_path: Path) -> None:
    write_model(tmp_path / "m" / "one.gguf")
    cache_file = tmp_path / "cache.json"
    cache_file.write_text("{ this is not json")
    assert scan([tmp_path / "m"], include_defaults=False, cache=HeaderCache(cache_file)).models[0].error is None


def test_default_folders_that_exist(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for sub in (".lmstudio/models", ".cache/huggingface/hub", ".cache/llama.cpp", "Library/Caches/llama.cpp"):
        (home / sub).mkdir(parents=True)
    (tmp_path / "lad" / "llama.cpp").mkdir(parents=True)
    found = default_folders(home, {"LOCALAPPDATA": str(tmp_path / "lad")})
    sources = [f.source for f in found]
    assert sources.count("llama.cpp cache") == 3 and "LM Studio" in sources and "Hugging Face cache" in sources
    assert all(f.path.is_dir() for f in found)
    hf = tmp_path / "hf"
    (hf / "hub").mkdir(parents=True)
    assert any(f.path == hf / "hub" for f in default_folders(home, {"HF_HOME": str(hf)}))


def test_demo_model_listed_only_without_own_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    demo_dir = tmp_path / "demo"
    write_model(demo_dir / model_catalog.DEMO_MODEL_FILE, name="Demo")
    monkeypatch.setenv("LLAMA_LAUNCHER_DEMO_DIR", str(demo_dir))
    monkeypatch.setattr(model_catalog, "default_folders", lambda: [])
    res = scan([tmp_path / "empty"], cache=HeaderCache(tmp_path / "c.json"))
    assert [m.name for m in res.models] == ["Demo"] and "demo model" in res.notes[-1]
    assert res.notes[0] == f"skipped {tmp_path / 'empty'}: the folder does not exist (any more)"
    write_model(tmp_path / "mine" / "own.gguf", name="Own")
    res = scan([tmp_path / "mine"], cache=HeaderCache(tmp_path / "c.json"))
    assert [m.name for m in res.models] == ["Own"]
