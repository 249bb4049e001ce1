"""Catalog speed: our header reader vs gguf.GGUFReader, a cold scan of 1,000 files, a warm rescan.

    python benchmarks/bench_catalog.py [DEMO_MODEL]

Ratios are measured in the same run on the same machine. "Cold" means the launcher's header
cache is empty (the files themselves were just written, so the OS page cache is warm).
"""

from __future__ import annotations

import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from gguf import GGUFReader, GGUFWriter

from llama_launcher.core.models.catalog import HeaderCache, demo_model_path, scan
from llama_launcher.core.models.gguf_header import read_header


def timed(fn, repeat: int = 1) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def write_small_model(path: Path, i: int) -> None:
    w = GGUFWriter(str(path), "llama")
    w.add_name(f"bench model {i}")
    w.add_context_length(4096)
    w.add_embedding_length(64)
    w.add_block_count(4)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_file_type(15)
    w.add_tokenizer_model("llama")
    w.add_token_list([f"t{j}" for j in range(2000)])
    w.add_token_scores([0.0] * 2000)
    w.add_chat_template("{{ messages }}")
    w.add_tensor("token_embd.weight", np.zeros((16, 64), dtype=np.float32))
    for b in range(4):
        w.add_tensor(f"blk.{b}.attn_q.weight", np.zeros((8, 64), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> None:
    demo = Path(sys.argv[1]) if len(sys.argv) > 1 else demo_model_path()
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    ours = timed(lambda: read_header(demo), repeat=5)
    ref = timed(lambda: GGUFReader(str(demo)))
    print(f"| header read of {demo.name} | ours {ours * 1000:.0f} ms | gguf.GGUFReader {ref:.2f} s | "
          f"{ref / ours:.0f}x faster |")
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "models"
        for i in range(1000):
            sub = folder / f"org{i % 20}"
            sub.mkdir(parents=True, exist_ok=True)
            write_small_model(sub / f"model-{i}.gguf", i)
        cache_file = Path(d) / "cache.json"
        cold = timed(lambda: scan([folder], include_defaults=False, cache=HeaderCache(cache_file)))
        warm = timed(lambda: scan([folder], include_defaults=False, cache=HeaderCache(cache_file)), repeat=3)
        res = scan([folder], include_defaults=False, cache=HeaderCache(cache_file))
        assert len(res.models) == 1000 and all(m.error is None for m in res.models)
        print(f"| scan of 1,000 model files | cold (empty header cache) {cold:.2f} s | warm rescan {warm:.3f} s |")


if __name__ == "__main__":
    main()
