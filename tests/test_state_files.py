"""State files may be corrupt, hand-edited, a folder, or unwritable: never a crash, never silent loss."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from llama_launcher.core.host import identity
from llama_launcher.core.settings import store as settings_store
from llama_launcher.core.settings.launch import ModelSettings
from llama_launcher.core.speculative.measured import TunedChoice
from llama_launcher.core.state import api_key_store, state_files
from llama_launcher.core.tuning import store as tuning_store

posix = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


@pytest.fixture(autouse=True)
def no_old_notices() -> None:
    state_files.drain_notices()


def notices() -> list[str]:
    return state_files.drain_notices()


# --- settings -----------------------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"\x00\xff\xfe junk", b"[" * 200_000, b'{"folders": "not a list"', b"[]",
                                     b'"just a string"'])
def test_a_corrupt_settings_file_is_set_aside_with_a_notice(content: bytes) -> None:
    f = settings_store.settings_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(content)
    s = settings_store.load()
    assert s == settings_store.AppSettings()
    said = notices()
    assert len(said) == 1 and "moved to" in said[0] and "\n" not in said[0]
    asides = list(f.parent.glob("settings.json.corrupt-*"))
    assert len(asides) == 1 and asides[0].read_bytes() == content  # nothing lost
    assert settings_store.save(s) and json.loads(f.read_text())["version"] == settings_store.SETTINGS_VERSION


def test_wrong_types_fall_back_to_defaults_field_by_field() -> None:
    f = settings_store.settings_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps({"lan": "false", "port": "8080", "folders": ["/a", 3], "binary": "/bin/x",
                             "models": {"/m.gguf": {"modes": {"mtp": "on"}, "ctx": "big", "threads": 4,
                                                    "extra_args": "--temp 1\x00", "draft_n_max": 99}}}))
    s = settings_store.load()
    assert s.lan is False  # "false" is not true
    assert s.port == 0 and s.folders == [] and s.binary == "/bin/x"
    m = s.model("/m.gguf")
    assert m.mode("mtp") == "on" and m.threads == 4 and m.ctx is None and m.extra_args == "" and m.draft_n_max is None
    said = notices()
    assert any("lan must be true or false" in n for n in said) and any("ctx" in n for n in said)
    assert all("\n" not in n for n in said)


def test_version_1_settings_are_migrated() -> None:
    f = settings_store.settings_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps({"version": 1, "models": {"/m.gguf": {"mtp": "off", "ngram_mod": "on", "ctx": 4096}}}))
    m = settings_store.load().model("/m.gguf")
    assert m.modes == {"mtp": "off", "ngram-mod": "on"} and m.ctx == 4096


def test_settings_round_trip_keeps_every_field() -> None:
    s = settings_store.AppSettings(folders=["/x"], lan=True, port=8123)
    s.set_model("/m.gguf", ModelSettings(modes={"mtp": "on"}, draft_model="/d.gguf", cache_type="q8_0", ctx=8192))
    assert settings_store.save(s)
    assert settings_store.load() == s


def test_an_unwritable_config_folder_is_said_once_and_the_app_goes_on(isolated_home: Path) -> None:
    # a regular file where the config folder should be: mkdir fails even for root
    (isolated_home / "config").write_text("not a folder")
    s = settings_store.AppSettings(folders=["/x"])
    assert settings_store.save(s) is False
    assert settings_store.save(s) is False
    said = notices()
    assert len(said) == 1 and "could not be saved" in said[0] and "this session only" in said[0]


# --- tuning results -------------------------------------------------------------------------------

def _choice(n: int) -> TunedChoice:
    return TunedChoice(("mtp",), n, 1.2, 0.03, measured_at="now")


def test_a_torn_tuning_file_is_set_aside_before_a_new_result_is_written(tmp_path: Path) -> None:
    models = [tmp_path / f"m{i}.gguf" for i in range(3)]
    for m in models:
        m.write_bytes(b"x")
    for i, m in enumerate(models):
        tuning_store.save(str(m), 11434, _choice(i + 1))
    f = tuning_store.store_file()
    whole = f.read_bytes()
    f.write_bytes(whole[:-1])  # one byte torn off
    tuning_store.save(str(models[0]), 11434, _choice(5))
    asides = list(f.parent.glob("tuning.json.corrupt-*"))
    assert len(asides) == 1 and asides[0].read_bytes() == whole[:-1]  # the three old results are kept aside
    assert any("tuning results file was corrupt" in n for n in notices())
    assert tuning_store.lookup(str(models[0]), 11434).draft_n_max == 5


@pytest.mark.parametrize("results", [{"k": "x"}, {"k": {"methods": "mtp", "speedup": 1}}, {"k": {"speedup": "fast"}},
                                     [1, 2]])
def test_wrong_types_in_tuning_results_never_raise(results: object) -> None:
    f = tuning_store.store_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps({"version": 2, "results": results}))
    assert tuning_store.lookup("/nope.gguf", 1) is None
    assert any("corrupt" in n for n in notices())


def test_version_1_tuning_results_are_still_read(tmp_path: Path) -> None:
    m = tmp_path / "m.gguf"
    m.write_bytes(b"x")
    f = tuning_store.store_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    key = identity.store_key(str(m), 11434)
    f.write_text(json.dumps({"version": 1, "results": {key: {"setting": "mtp+ngram", "draft_n_max": 2,
                                                              "speedup": 1.31}}}))
    t = tuning_store.lookup(str(m), 11434)
    assert t is not None and t.methods == ("mtp", "ngram-mod") and t.describe() == "measured: MTP + ngram-mod n=2, +31% vs off"


# --- the API key --------------------------------------------------------------------------------------

@posix
def test_the_key_file_is_owner_only_from_the_first_byte() -> None:
    old = os.umask(0)  # even with a permissive umask
    try:
        key = api_key_store.load_or_create()
    finally:
        os.umask(old)
    assert key.file is not None and stat.S_IMODE(key.file.stat().st_mode) == 0o600
    assert api_key_store.weakness(key.key) is None and api_key_store.load_or_create().key == key.key


@posix
def test_a_key_file_others_can_read_is_tightened() -> None:
    f = api_key_store.key_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text("ll-" + "a" * 40)
    os.chmod(f, 0o644)
    key = api_key_store.load_or_create()
    assert key.key == "ll-" + "a" * 40 and stat.S_IMODE(f.stat().st_mode) == 0o600
    assert any("readable by other users" in n for n in notices())


@pytest.mark.parametrize("content", [b"x", b"\xff\xfe\x00binary", b"", b"short key"])
def test_weak_or_junk_keys_are_replaced(content: bytes) -> None:
    f = api_key_store.key_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(content)
    key = api_key_store.load_or_create()
    assert api_key_store.weakness(key.key) is None and f.read_text().strip() == key.key
    assert notices()


def test_an_unwritable_key_file_keeps_the_key_in_memory(isolated_home: Path) -> None:
    (isolated_home / "config").write_text("not a folder")
    key = api_key_store.load_or_create()
    assert key.file is None and api_key_store.weakness(key.key) is None
    assert any("this session only" in n for n in notices())


# --- the primitives ---------------------------------------------------------------------------------

def test_a_folder_where_a_state_file_belongs_is_moved_aside(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    target.mkdir()
    assert state_files.read_json(target, "x", lambda d: d) is None
    assert not target.exists() and list(tmp_path.glob("x.json.corrupt-*"))


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    state_files.write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        state_files.write_bytes(target, object())  # type: ignore[arg-type]
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_only_the_newest_few_set_aside_copies_are_kept(tmp_path: Path) -> None:
    """A file that comes back corrupt at every start keeps three copies, not one more per start."""
    target = tmp_path / "x.json"
    (tmp_path / "x.json.corrupt-19990101-000000").mkdir()  # a folder once set aside: yours, never removed
    (tmp_path / "other.json.corrupt-19990101-000000").write_text("another file's copy")
    for n in range(6):
        target.write_text(f"corrupt {n} {{")
        assert state_files.read_json(target, "x", lambda d: d) is None
    kept = sorted(p for p in tmp_path.glob("x.json.corrupt-*") if p.is_file())
    assert len(kept) == state_files.KEEP_SET_ASIDE == 3
    assert sorted(p.read_text() for p in kept) == ["corrupt 3 {", "corrupt 4 {", "corrupt 5 {"]
    assert (tmp_path / "x.json.corrupt-19990101-000000").is_dir()
    assert (tmp_path / "other.json.corrupt-19990101-000000").read_text() == "another file's copy"
    said = notices()
    assert len(said) == 1  # said once per file and run (the key), however often it was set aside


def test_a_tuning_result_that_cannot_be_saved_says_so_instead_of_naming_a_file() -> None:
    """tuning_store.save named the file even when nothing was written there (issue 19, item 9)."""
    from llama_launcher.core.speculative.measured import TunedChoice
    from llama_launcher.core.state.state_files import drain_notices
    from llama_launcher.core.tuning import store as tuning_store

    drain_notices()
    folder = tuning_store.store_file().parent
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("a file where the data folder should be")  # nothing can be written under it
    assert tuning_store.save("/models/m.gguf", 11434, TunedChoice(("ngram-mod",), None, 1.2)) is None
    assert any("could not be saved" in n for n in drain_notices())
