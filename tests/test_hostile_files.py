"""Issue 12, items 5, 7 and 11: cheap hostile files cost little time and memory, and say what they are.

The files are real (sparse 16 GiB files, FIFOs, symlinks, empty split stubs) and the CLI runs as
a user runs it, in a child process with a timeout.
"""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llama_launcher.core.models import gguf_header, gguf_stream
from llama_launcher.core.models.catalog import HeaderCache, find_gguf_files, scan
from llama_launcher.core.models.gguf_header import GGUFError, read_header
from llama_launcher.core.models.model_info import read_model_info

import file_modes
from gguf_factory import write_model
from hostile_files import (
    SPARSE_SIZE,
    empty_split_parts,
    gguf_prefix,
    hostile_folder,
    kv_bomb,
    odd_entries,
    sparse,
    string_array_bomb,
    tensor_bomb,
)

POSIX = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and sparse files as POSIX makes them")


def cli(*args: str, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llama_launcher", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


# A hang-catcher, not a speed goal (a test must pass on a machine twice as slow, or busy): what is
# bounded exactly is the memory (peak); the speed figures are in benchmarks/bench_hostile_folder.py
# and benchmarks/bench_catalog.py.
HANG_S = 60.0


def measured(fn, trace: bool = True):
    """(result or exception, seconds, peak traced bytes) of one call (tracing slows Python ~10x)."""
    if trace:
        tracemalloc.start()
    t = time.perf_counter()
    try:
        out = fn()
    except Exception as exc:  # noqa: BLE001 - the caller asserts on the kind
        out = exc
    elapsed = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    if trace:
        tracemalloc.stop()
    return out, elapsed, peak


# --- item 7: counts bounded by the file's size and by absolute caps -------------------------

@POSIX
@pytest.mark.parametrize("make,message", [
    (tensor_bomb, "536870912 tensors cannot fit"),
    (kv_bomb, "1073741824 metadata entries would make the header larger than 256 MiB"),
    (string_array_bomb, "header runs past 256 MiB"),
    (lambda p: tensor_bomb(p, 60_000), "duplicate tensor name ''"),
    (lambda p: kv_bomb(p, 10_000), "duplicate metadata key ''"),
])
def test_sparse_bombs_are_refused_at_once(tmp_path: Path, make, message: str) -> None:
    f = make(tmp_path / "bomb.gguf")
    assert f.stat().st_size == SPARSE_SIZE
    err, seconds, peak = measured(lambda: read_header(f))
    assert isinstance(err, GGUFError) and message in str(err) and "\n" not in str(err)
    assert seconds < HANG_S and peak < 8 * 1024 * 1024
    info = read_model_info(f)
    assert not info.launchable and info.error == str(err)


@POSIX
def test_a_legal_array_of_empty_strings_in_a_hole_is_skipped_without_reading_it(tmp_path: Path) -> None:
    # 2^25 empty strings (256 MiB of zeros) fit under the header cap: legal, so read, but fast
    f = string_array_bomb(tmp_path / "holes.gguf", count=2**25 - 64)
    header, seconds, peak = measured(lambda: read_header(f))
    assert not isinstance(header, Exception), header
    assert header.metadata["tokenizer.ggml.tokens"].count == 2**25 - 64
    assert seconds < HANG_S and peak < 8 * 1024 * 1024


def _tensor_infos(n: int) -> bytes:
    return b"".join(struct.pack("<Q", len(name)) + name + struct.pack("<IQIQ", 1, 4, 0, 0)
                    for name in (f"t{i}".encode() for i in range(n)))


def test_the_tensor_cap_is_exact(tmp_path: Path) -> None:
    cap = gguf_header.MAX_TENSORS
    ok = tmp_path / "at-cap.gguf"
    ok.write_bytes(gguf_prefix(cap, 0, _tensor_infos(cap)))
    header, seconds, _ = measured(lambda: read_header(ok), trace=False)
    assert not isinstance(header, Exception) and header.tensors.count == cap and header.tensors.parameters == 4 * cap
    assert seconds < HANG_S
    over = tmp_path / "over-cap.gguf"
    over.write_bytes(gguf_prefix(cap + 1, 0, _tensor_infos(cap + 1)))
    with pytest.raises(GGUFError, match=f"{cap + 1} tensors is more than any real model has"):
        read_header(over)


def test_the_metadata_cap_and_the_memory_budget(tmp_path: Path) -> None:
    cap = gguf_header.MAX_KV
    over = tmp_path / "kv.gguf"
    over.write_bytes(gguf_prefix(0, cap + 1, b"\0" * (13 * (cap + 1))))
    with pytest.raises(GGUFError, match=f"{cap + 1} metadata entries is more than"):
        read_header(over)
    # 40 strings of 1 MiB each would all be kept (each is under the 1 MiB per-string limit): 40 MiB
    big = b"x" * (gguf_stream.MAX_KEPT_STRING - 100)
    body = b"".join(struct.pack("<Q", 4) + f"k{i:03d}".encode() + struct.pack("<IQ", 8, len(big)) + big
                    for i in range(40))
    f = tmp_path / "strings.gguf"
    f.write_bytes(gguf_prefix(0, 40, body))
    err, _, peak = measured(lambda: read_header(f))
    assert isinstance(err, GGUFError) and "more than 16 MiB of memory" in str(err)
    assert peak < 40 * 1024 * 1024


# A real header, then mutations that move one count toward, onto and past the bounds its
# file size (or the absolute caps) allow; sometimes the file is made sparse and huge.
@pytest.fixture(scope="module")
def seed_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    f = write_model(tmp_path_factory.mktemp("seed") / "s.gguf", blocks=2, tokens=300, nextn=1,
                    extra_kv={"llama.attention.sliding_window_pattern": [True, False]})
    return f.read_bytes()


def _count_fields(data: bytes) -> list[tuple[int, int, str]]:
    """(offset, minimum item size, kind) of every count in the header: n_tensors, n_kv, array counts, lengths."""
    out = [(8, gguf_header.MIN_TENSOR_BYTES, "n_tensors"), (16, gguf_header.MIN_KV_BYTES, "n_kv")]
    (n_kv,) = struct.unpack_from("<Q", data, 16)
    off = 24
    for _ in range(n_kv):
        (klen,) = struct.unpack_from("<Q", data, off)
        out.append((off, 1, "key length"))
        off += 8 + klen
        (vtype,) = struct.unpack_from("<I", data, off)
        off += 4
        if vtype == 8:
            (n,) = struct.unpack_from("<Q", data, off)
            out.append((off, 1, "string length"))
            off += 8 + n
        elif vtype == 9:
            etype, count = struct.unpack_from("<IQ", data, off)
            out.append((off + 4, 8 if etype == 8 else 1, "array count"))
            off += 12
            if etype == 8:
                for _ in range(count):
                    (n,) = struct.unpack_from("<Q", data, off)
                    off += 8 + n
            else:
                off += count * struct.calcsize("<" + {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f",
                                                       7: "?", 10: "Q", 11: "q", 12: "d"}[etype])
        else:
            off += struct.calcsize("<" + {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?",
                                          10: "Q", 11: "q", 12: "d"}[vtype])
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_counts_toward_and_past_the_bounds(tmp_path: Path, seed_file: bytes, data: st.DataObject) -> None:
    buf = bytearray(seed_file)
    fields = _count_fields(seed_file)
    huge = data.draw(st.booleans())
    size = SPARSE_SIZE if huge else len(buf)
    for _ in range(data.draw(st.integers(1, 3))):
        off, each, kind = data.draw(st.sampled_from(fields))
        room = (size - off - 8) // each
        caps = {"n_tensors": gguf_header.MAX_TENSORS, "n_kv": gguf_header.MAX_KV}.get(kind, room)
        value = data.draw(st.sampled_from([room - 1, room, room + 1, caps - 1, caps, caps + 1,
                                           gguf_stream.MAX_HEADER_BYTES // each, 2**32, 2**63, 2**64 - 1]))
        buf[off:off + 8] = struct.pack("<Q", max(0, min(value, 2**64 - 1)))
    f = tmp_path / "fuzz.gguf"
    if huge:
        sparse(f, bytes(buf))
    else:
        f.write_bytes(bytes(buf))
    result, seconds, peak = measured(lambda: read_header(f))
    if isinstance(result, Exception):
        assert isinstance(result, GGUFError), repr(result)
        assert "\n" not in str(result) and len(str(result)) <= 300
    assert seconds < HANG_S, f"{seconds:.2f} s"
    assert peak < 48 * 1024 * 1024, f"{peak / 2**20:.0f} MiB"


# --- item 7: split-part bookkeeping by what exists -----------------------------------------

def test_empty_split_stubs_cost_one_small_entry_each(tmp_path: Path) -> None:
    empty_split_parts(tmp_path / "s", n=200)
    (res, seconds, peak) = measured(lambda: scan([tmp_path / "s"], include_defaults=False,
                                                 cache=HeaderCache(tmp_path / "c.json")))
    assert not isinstance(res, Exception), res
    assert len(res.models) == 200 and seconds < HANG_S and peak < 64 * 1024 * 1024
    m = res.models[0]
    assert m.missing_count == 99998 and len(m.missing_parts) == 8 and m.split_parts == [m.path]
    assert m.missing_parts[0].endswith("-00002-of-99999.gguf") and not m.launchable
    assert "missing part" in (m.error or "") or "not a GGUF" in (m.error or "")
    size = len(json.dumps([x.to_dict() for x in res.models]))
    assert size < 1_000_000  # was 224 MB for 20 stubs


def test_split_with_gaps_names_the_first_missing_parts(tmp_path: Path) -> None:
    for i in (1, 2, 5, 9):
        write_model(tmp_path / f"big-{i:05d}-of-00012.gguf", name="Big", split=(i, 12))
    write_model(tmp_path / "big-00013-of-00012.gguf", name="Big", split=(13, 12))
    res = scan([tmp_path], include_defaults=False, cache=HeaderCache(tmp_path / "c.json"))
    big = next(m for m in res.models if m.file_name == "big-00001-of-00012.gguf")
    assert big.missing_count == 8 and [Path(p).name[4:9] for p in big.missing_parts] == \
        ["00003", "00004", "00006", "00007", "00008", "00010", "00011", "00012"]
    assert [Path(p).name for p in big.split_parts] == [f"big-{i:05d}-of-00012.gguf" for i in (1, 2, 5, 9)]
    assert big.error == ("split model is missing 8 of 12 parts: big-00003-of-00012.gguf, "
                         "big-00004-of-00012.gguf, big-00006-of-00012.gguf ...")
    past = next(m for m in res.models if m.file_name == "big-00013-of-00012.gguf")
    assert past.error == "split part number 13 is outside 1..12" and not past.launchable


# --- item 11: what the scan skips, it names ------------------------------------------------

@POSIX
def test_skipped_entries_are_each_named_in_one_line(tmp_path: Path) -> None:
    made = odd_entries(tmp_path / "odd")
    write_model(tmp_path / "odd" / "good.gguf")
    self_loop = tmp_path / "odd" / "self.gguf"
    self_loop.symlink_to(self_loop)
    files, notes = find_gguf_files([tmp_path / "odd"])
    assert [f.name for f in files] == ["good.gguf"]
    assert all("\n" not in n for n in notes)
    expected = {
        f"skipped {made['fifo']}: a named pipe (FIFO), not a model file",
        f"skipped {made['fifo_link']}: a named pipe (FIFO), not a model file",
        f"skipped {made['broken']}: broken symlink (its target {tmp_path / 'odd' / 'no-such-target.gguf'} does not exist)",
        f"skipped {made['loop']}: symlink loop (it leads back to a folder above it)",
        f"skipped {self_loop}: symlink loop (the link leads back to itself)",
        f"skipped {tmp_path / 'odd' / 'deep' / 'd0' / 'd1' / 'd2' / 'd3' / 'd4' / 'd5' / 'd6' / 'd7'}: "
        f"deeper than 8 folders below {tmp_path / 'odd'}",
    }
    assert set(notes) == expected


@POSIX
def test_an_unreadable_folder_is_named(tmp_path: Path) -> None:
    locked = tmp_path / "models" / "locked"
    write_model(locked / "hidden.gguf")
    write_model(tmp_path / "models" / "open.gguf")
    locked.chmod(0o000)
    # the scan runs in a child that meets file modes as a user does (root would read the folder anyway)
    code = ("import json,sys; from pathlib import Path; from llama_launcher.core.models.catalog import "
            "find_gguf_files; f,n=find_gguf_files([Path(sys.argv[1])]); print(json.dumps([[x.name for x in f], n]))")
    try:
        run = file_modes.run([sys.executable, "-c", code, str(tmp_path / "models")], timeout=60)
    finally:
        locked.chmod(0o755)
    assert run.returncode == 0, run.stderr
    names, notes = json.loads(run.stdout)
    assert names == ["open.gguf"]
    assert notes == [f"skipped {locked}: the folder cannot be read (Permission denied)"]


def test_many_skipped_entries_are_counted_not_listed(tmp_path: Path) -> None:
    for i in range(40):
        (tmp_path / f"gone-{i}.gguf").symlink_to(tmp_path / f"nothing-{i}.gguf")
    _, notes = find_gguf_files([tmp_path])
    assert len(notes) == 6 and notes[-1] == "... and 35 more skipped (broken symlink)"


# --- items 5, 7, 11 through the CLI, as a user runs it --------------------------------------

@POSIX
def test_models_on_the_worst_hostile_folder(tmp_path: Path) -> None:
    hostile_folder(tmp_path / "h", splits=200)
    write_model(tmp_path / "h" / "fine.gguf", name="Fine")
    t = time.monotonic()
    run = cli("models", "--json", str(tmp_path / "h"), timeout=120)
    elapsed = time.monotonic() - t
    assert run.returncode == 0, run.stderr
    assert elapsed < HANG_S, elapsed
    out = json.loads(run.stdout)
    assert len(run.stdout) < 2_000_000
    by = {m["file_name"]: m for m in out["models"]}
    assert by["fine.gguf"]["launchable"] and by["fine.gguf"]["name"] == "Fine"
    assert "cannot fit" in by["tensor-bomb.gguf"]["error"]
    assert "256 MiB" in by["kv-bomb.gguf"]["error"] and "256 MiB" in by["string-array-bomb.gguf"]["error"]
    assert sum(1 for m in out["models"] if m["file_name"].endswith("-00001-of-99999.gguf")) == 200
    kinds = " ".join(out["notes"])
    for what in ("named pipe", "broken symlink", "symlink loop", "deeper than 8 folders"):
        assert what in kinds
    text = cli("models", str(tmp_path / "h"), timeout=120)
    assert text.returncode == 0 and "note: skipped" in text.stdout and "Traceback" not in text.stderr


@POSIX
@pytest.mark.parametrize("which", ["fifo", "fifo_link"])
def test_plan_on_a_fifo_says_so_at_once(tmp_path: Path, llama_server: str, which: str) -> None:
    made = odd_entries(tmp_path)
    t = time.monotonic()
    run = cli("plan", str(made[which]), "--binary", llama_server, timeout=60)
    assert time.monotonic() - t < HANG_S
    assert run.returncode == 2
    assert run.stderr.strip() == f"error: {made[which]} is not a model file: it is a named pipe (FIFO)"


# --- issue 19, item 17: metadata the header cache could not load back is never cached ---------------

NON_FINITE_CASES = {
    **{f"{key} = {value}": {f"llama.{key}": value}
       for key in ("block_count", "context_length", "embedding_length", "attention.head_count",
                   "attention.sliding_window", "nextn_predict_layers")
       for value in (math.nan, math.inf, -math.inf)},
    "head_count = [NaN, 1.0]": {"llama.attention.head_count": [math.nan, 1.0]},
}


def test_non_finite_metadata_never_poisons_the_header_cache(tmp_path: Path, isolated_home: Path) -> None:
    """Each of these used to be cached as read; every later command then refused the whole cache,
    set it aside and started over, one more ``.corrupt-*`` copy per run."""
    folder = tmp_path / "m"
    for i, kv in enumerate(NON_FINITE_CASES.values()):
        write_model(folder / f"hostile-{i:02}.gguf", name=f"hostile {i}", extra_kv=kv)
    write_model(folder / "nul-in-name.gguf", name="a name with a \x00 inside")
    write_model(folder / "fine.gguf", name="Fine")
    cache = isolated_home / "cache" / "model-headers.json"
    seen = []
    for _ in range(3):
        run = cli("models", "--json", str(folder))
        assert run.returncode == 0, run.stderr
        assert "note:" not in run.stderr and "Traceback" not in run.stderr, run.stderr
        seen.append(sorted(m["name"] for m in json.loads(run.stdout)["models"]))
    assert seen[0] == seen[1] == seen[2] and len(seen[0]) == len(NON_FINITE_CASES) + 2
    assert "a name with a \\u0000 inside" in run.stdout  # shown with its NUL (escaped by JSON), not altered
    assert list(cache.parent.glob("model-headers.json.corrupt-*")) == []
    stored = json.loads(cache.read_text())["files"]
    assert str(folder / "fine.gguf") in stored  # the cache still works for the files it can hold
    assert HeaderCache(cache).get(folder / "fine.gguf", (folder / "fine.gguf").stat().st_size,
                                  (folder / "fine.gguf").stat().st_mtime_ns) is not None


def test_the_header_cache_stores_only_what_it_can_load_back(tmp_path: Path) -> None:
    """One definition: an entry the loader would refuse is not written (it is read again next time)."""
    write_model(tmp_path / "nan.gguf", extra_kv={"llama.embedding_length": math.nan})
    write_model(tmp_path / "fine.gguf")
    cache = HeaderCache(tmp_path / "cache.json")
    for name in ("nan.gguf", "fine.gguf"):
        f = tmp_path / name
        info = read_model_info(f)
        cache.put(f, f.stat().st_size, f.stat().st_mtime_ns, info)
        assert (cache.get(f, f.stat().st_size, f.stat().st_mtime_ns) is not None) == (name == "fine.gguf")
    assert math.isnan(read_model_info(tmp_path / "nan.gguf").arch_meta["embedding_length"])  # kept as read:
    cache.save()  # the estimate names the bad key (test_memory_hostile)
    again = HeaderCache(tmp_path / "cache.json")
    assert set(again.entries) == {str(tmp_path / "fine.gguf")}
