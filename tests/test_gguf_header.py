"""The streaming header reader: correct on real files, bounded and one-line on malformed ones."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import pytest
from gguf import GGUFReader
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llama_launcher.core.models.gguf_header import GGUFError, SkippedArray, read_header
from llama_launcher.core.models.model_info import read_model_info

from gguf_factory import write_model


def test_reads_metadata_and_tensor_shapes(tmp_path: Path) -> None:
    f = write_model(tmp_path / "m.gguf", blocks=3, hidden=8, vocab=16, nextn=1, tokens=5000)
    h = read_header(f)
    assert h.metadata["general.architecture"] == "llama"
    assert h.metadata["llama.block_count"] == 3
    tokens = h.metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, SkippedArray) and tokens.count == 5000  # large arrays are skipped, not decoded
    assert h.tensors.count == 1 + 3 + 1
    assert h.tensors.parameters == 16 * 8 + 3 * 64 + 128
    assert h.tensors.mtp_parameters == 128 and h.tensors.mtp_tensors == 1


def test_agrees_with_gguf_reader(tmp_path: Path) -> None:
    f = write_model(tmp_path / "m.gguf", blocks=2, tokens=300, extra_kv={"llama.attention.sliding_window_pattern": [True, False]})
    ours = read_header(f)
    ref = GGUFReader(str(f))
    assert set(ours.metadata) == {k for k in ref.fields if not k.startswith("GGUF.")}
    assert ours.tensors.count == len(ref.tensors)
    assert ours.tensors.parameters == sum(int(t.n_elements) for t in ref.tensors)
    assert ours.metadata["llama.attention.sliding_window_pattern"] == [True, False]


@pytest.mark.integration
def test_demo_model(demo_model: Path) -> None:
    info = read_model_info(demo_model)
    assert info.error is None
    assert info.architecture == "gemma3" and info.name == "Gemma 3 270m"
    assert info.quantization == "Q4_K_M" and info.size_label == "270M"
    assert info.context_length == 32768 and info.block_count == 18
    assert 260e6 < info.parameters < 275e6 and not info.is_mtp
    ref = GGUFReader(str(demo_model))
    assert info.parameters == sum(int(t.n_elements) for t in ref.tensors)


def header_bytes(n_tensors: int = 0, n_kv: int = 1, body: bytes = b"") -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + body


def kv_string(key: str, value: bytes, declared_len: int | None = None) -> bytes:
    k = key.encode()
    return struct.pack("<Q", len(k)) + k + struct.pack("<I", 8) + struct.pack("<Q", declared_len if declared_len is not None
                                                                               else len(value)) + value


@pytest.mark.parametrize("data,message", [
    (b"hello world, not a gguf", "not a GGUF"),
    (b"GG", "not a GGUF"),
    (b"GGUF" + struct.pack("<I", 1) + b"\0" * 16, "version 1"),
    (b"GGUF" + struct.pack("<I", 99) + b"\0" * 16, "unsupported GGUF version 99"),
    (b"GGUF" + b"\0" * 20, "corrupt GGUF: version field 0"),
    (b"GGUF\0\0\0\0", "truncated file: only 8 bytes"),  # cut before its counts: an unfinished download
    (b"GGUF" + struct.pack("<I", 3) + b"\0" * 8, "truncated file: only 16 bytes"),  # zeros are damage, not a newer format
    (b"GGUF" + b"\xff" * 20, "corrupt GGUF: version field 4294967295"),
    (header_bytes(n_kv=2**60), "cannot fit"),
    (header_bytes(n_tensors=2**40), "cannot fit"),
    (header_bytes(body=kv_string("general.name", b"x", declared_len=2**60)), "claims"),
    (header_bytes(body=struct.pack("<Q", 3) + b"abc" + struct.pack("<I", 77) + b"\0" * 8), "unknown value type 77"),
    (header_bytes(body=struct.pack("<Q", 3) + b"abc" + struct.pack("<IIQ", 9, 5, 2**62)), "claims"),
    (header_bytes(body=kv_string("general.name", b"abc")[:-2]), "truncated"),
])
def test_malformed_inputs_give_one_line_errors(tmp_path: Path, data: bytes, message: str) -> None:
    f = tmp_path / "bad.gguf"
    f.write_bytes(data)
    with pytest.raises(GGUFError, match=message) as exc:
        read_header(f)
    assert "\n" not in str(exc.value)
    info = read_model_info(f)
    assert info.error and message.split()[0].lower() in info.error.lower() and not info.launchable


def test_a_key_name_in_an_error_is_shown_safely_and_cut(tmp_path: Path) -> None:
    key = b"evil\x1b[2J\x07\n" + b"k" * 400
    f = tmp_path / "bad.gguf"
    f.write_bytes(header_bytes(body=struct.pack("<Q", len(key)) + key + struct.pack("<I", 77) + b"\0" * 8))
    with pytest.raises(GGUFError) as exc:
        read_header(f)
    text = str(exc.value)
    assert text.startswith("corrupt GGUF: unknown value type 77 for key evil\\x07\\nkkk")
    assert len(text) == 300 and text.endswith("k…")


def test_truncated_real_file(tmp_path: Path) -> None:
    f = write_model(tmp_path / "m.gguf", tokens=2000)
    data = f.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: len(data) // 3])
    assert "truncated" in (read_model_info(cut).error or "")


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    assert "cannot read" in (read_model_info(tmp_path / "missing.gguf").error or "")
    d = tmp_path / "dir.gguf"
    d.mkdir()
    assert read_model_info(d).error


def test_big_string_arrays_stay_within_a_few_megabytes(tmp_path: Path) -> None:
    f = write_model(tmp_path / "big.gguf", tokens=200_000)
    tracemalloc.start()
    read_header(f)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4 * 1024 * 1024


@pytest.fixture(scope="module")
def seed_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    f = write_model(tmp_path_factory.mktemp("seed") / "s.gguf", blocks=2, tokens=40, nextn=1,
                    extra_kv={"llama.attention.sliding_window_pattern": [True, False]})
    return f.read_bytes()[:4096]


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_never_crashes(tmp_path: Path, seed_bytes: bytes, data: st.DataObject) -> None:
    buf = bytearray(seed_bytes)
    for _ in range(data.draw(st.integers(1, 6))):
        kind = data.draw(st.sampled_from(["flip", "u64", "truncate", "insert"]))
        pos = data.draw(st.integers(0, len(buf) - 1)) if buf else 0
        if kind == "flip" and buf:
            buf[pos] = data.draw(st.integers(0, 255))
        elif kind == "u64" and len(buf) > pos + 8:
            buf[pos:pos + 8] = struct.pack("<Q", data.draw(st.sampled_from([0, 1, 2**31, 2**32 - 1, 2**60, 2**64 - 1])))
        elif kind == "truncate":
            del buf[pos:]
        else:
            buf[pos:pos] = data.draw(st.binary(max_size=16))
    f = tmp_path / "fuzz.gguf"
    f.write_bytes(bytes(buf))
    try:
        read_header(f)
    except GGUFError as exc:
        assert "\n" not in str(exc)
    info = read_model_info(f)
    assert info.error is None or "\n" not in info.error
