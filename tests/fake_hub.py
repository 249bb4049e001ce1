"""A local fake of the Hugging Face Hub for the calls ``huggingface_hub`` and the launcher make.

Where each answer's shape comes from (huggingface_hub 2.4, read in site-packages; the Hub API docs at
huggingface.co/docs/hub/api are not reachable from here, their field lists are mirrored by
huggingface.js's ``ListFileEntry`` / ``PathInfo`` interfaces):

- ``GET /api/models?search=&filter=&sort=&limit=&expand=``: ``HfApi.list_models`` (hf_api.py) builds
  these parameters; each item is what ``hf_api.ModelInfo.__init__`` pops: ``id``, ``downloads``,
  ``likes``, ``lastModified`` (ISO 8601), ``gated`` (``"auto"``/``"manual"``/``false``), ``private``, ``tags``.
- ``GET /api/models/{repo}``: ``HfApi.model_info``; ``sha`` is the commit served, ``siblings`` one
  ``{"rfilename"}`` per file.
- ``GET /api/models/{repo}/tree/{revision}?recursive=&expand=``: ``HfApi._iter_repo_tree_pages``;
  entries as ``RepoFile.__init__`` / ``RepoFolder.__init__`` read them: ``type`` ("file"/"directory"),
  ``path``, ``oid`` (git blob id), ``size``, and for LFS files ``lfs: {oid (SHA-256), size, pointerSize}``.
  One page (the real Hub pages by 1000 with a ``Link: rel=next`` header, ``utils/_pagination.py``).
- ``HEAD``/``GET /{repo}/resolve/{revision}/{path}``: ``file_download.get_hf_file_metadata`` and
  ``_httpx2_follow_hub_redirects_with_backoff``: an LFS file answers ``302`` to a CDN on another host
  with ``X-Repo-Commit``, ``X-Linked-Etag`` (the quoted SHA-256, which becomes the cache's blob name),
  ``X-Linked-Size`` and ``Location``; the library does not follow a redirect off the Hub's host for HEAD
  (the metadata is on the redirect), and httpx drops the ``Authorization`` header when following it.
  Here the Hub is ``127.0.0.1:PORT`` and the CDN ``localhost:PORT``: two origins, one server.
- ``GET /cdn/{sha256}`` with ``Range: bytes=N-`` answers ``206`` with ``Content-Range: bytes N-M/SIZE``
  (``file_download.http_get`` resumes with it and resets on a ``200``).
- Errors: ``utils/_http.py::hf_raise_for_status`` reads ``X-Error-Code`` (``RepoNotFound``,
  ``GatedRepo``, ``EntryNotFound``, ``RevisionNotFound``); a gated file without a token is ``401``
  ``GatedRepo``, with a token not granted ``403`` ``GatedRepo``; a repository that does not exist
  ``401``/``404`` ``RepoNotFound``; ``429`` carries ``Retry-After``.

Model files are written with the ``gguf`` package's writer, as llama.cpp's converter writes them. The
"big" repository's files are *virtual*: a real header describing a 14B model (shapes, quant types and
tensor offsets as the converter lays them out) followed by zeros up to the size the listing gives;
they are never downloaded whole, so their ``lfs.oid`` is a stand-in (the SHA-256 of the header and the
size), said here because it is not the content's hash. Every file the tests download is small and
real, with its true SHA-256.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.constants import GGML_QUANT_SIZES

TOKEN = "hf_fake_token_for_tests_0123456789"  # what a logged-in test sends; never printed by the launcher


@dataclass
class FakeFile:
    head: bytes  # the real bytes at the start (a whole file when ``size == len(head)``)
    size: int
    sha256: str = ""
    oid: str = ""

    def __post_init__(self) -> None:
        if not self.sha256:
            if self.size == len(self.head):
                self.sha256 = hashlib.sha256(self.head).hexdigest()
            else:  # a virtual file: a stand-in hash (see the module docstring)
                self.sha256 = hashlib.sha256(self.head + str(self.size).encode()).hexdigest()
        self.oid = self.oid or hashlib.sha1(self.sha256.encode()).hexdigest()  # noqa: S324 - an id, not security

    def read(self, start: int, end: int) -> bytes:
        """Bytes [start, end) of the content: the real head, then zeros."""
        out = self.head[start:end] if start < len(self.head) else b""
        return out + bytes(max(end - max(start, len(self.head)), 0))


@dataclass
class FakeRepo:
    files: dict[str, FakeFile]
    commit: str = "0" * 40
    gated: str | bool = False
    downloads: int = 100
    likes: int = 10
    last_modified: str = "2026-10-01T12:00:00.000Z"


@dataclass
class Behaviour:
    """Knobs a test turns."""

    fail: dict[str, tuple[int, str | None]] = field(default_factory=dict)  # path prefix -> (status, X-Error-Code)
    pause_at: dict[str, int] = field(default_factory=dict)  # sha -> byte offset where the CDN waits for `release`
    stall_at: dict[str, int] = field(default_factory=dict)  # sha -> offset after which nothing more is sent
    lie_total: dict[str, int] = field(default_factory=dict)  # sha -> the size Content-Range claims
    change_at: dict[str, tuple[int, FakeFile, str]] = field(default_factory=dict)  # sha -> (offset, new, repo)
    granted: bool = True  # whether the token is granted access to gated repositories


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # a client that hangs up mid-answer (a cancel, a stall) is expected here, not a failure to print


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.behaviour = Behaviour()
        self.release = threading.Event()  # lets a paused transfer go on
        self.paused = threading.Event()  # set when a transfer reached its pause point
        self.lock = threading.Lock()
        self.idle = threading.Condition(self.lock)  # notified when a CDN body ends (sent, or its client hung up)
        self.sending = 0  # CDN bodies still being written
        self.served: dict[str, int] = {}  # sha -> content bytes sent by the CDN
        self.ranges: list[tuple[str, int]] = []  # (sha, first byte) of every CDN request
        self.transfers: list[list] = []  # [sha, first byte, bytes sent] of every CDN request, as it goes
        self.requests: list[tuple[str, str, bool]] = []  # (method, path, sent an Authorization header)
        self.server = _Server(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.cdn = f"http://localhost:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fake-hub", daemon=True)

    def start(self) -> FakeHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)

    def total_served(self) -> int:
        with self.lock:
            return sum(self.served.values())

    def reset_counts(self) -> None:
        """Forget what was served so far. A body whose client already hung up (a header read that
        closed early) may still be writing a chunk into the socket's buffer; it is waited for, so
        its bytes are not counted against what comes next."""
        with self.lock:
            self.idle.wait_for(lambda: self.sending == 0, timeout=30)
            self.served.clear()
            self.ranges.clear()
            self.transfers.clear()
            self.requests.clear()

    def blob(self, sha: str) -> FakeFile | None:
        for repo in self.repos.values():
            for f in repo.files.values():
                if f.sha256 == sha:
                    return f
        return None


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        # --- helpers ------------------------------------------------------------------------
        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, data, status: int = 200, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})

        def _error(self, status: int, code: str | None, message: str = "") -> None:
            headers = {"X-Error-Message": message or f"error {status}"}
            if code:
                headers["X-Error-Code"] = code
            if status == 429:
                headers["Retry-After"] = "30"
            self._json({"error": message or f"error {status}"}, status, headers)

        def _authorized(self) -> bool:
            return self.headers.get("Authorization") == f"Bearer {TOKEN}"

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            url = urlparse(self.path)
            path = unquote(url.path)
            with hub.lock:
                hub.requests.append((self.command, path, "Authorization" in self.headers))
            for prefix, (status, code) in hub.behaviour.fail.items():
                if path.startswith(prefix):
                    return self._error(status, code)
            if path.startswith("/cdn/"):
                return self._cdn(path[5:])
            if path == "/api/models":
                return self._search(parse_qs(url.query))
            m = re.match(r"^/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?$", path)
            if m:
                return self._tree(m.group(1), parse_qs(url.query))
            m = re.match(r"^/api/models/([^/]+/[^/]+)(?:/revision/[^/]+)?$", path)
            if m:
                return self._info(m.group(1))
            m = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
            if m:
                return self._resolve(m.group(1), m.group(2), m.group(3))
            self._error(404, None, "no such route")

        # --- the API ------------------------------------------------------------------------
        def _search(self, q) -> None:
            text = (q.get("search") or [""])[0].lower()
            limit = int((q.get("limit") or ["50"])[0])
            hits = [{"_id": rid, "id": rid, "downloads": r.downloads, "likes": r.likes, "private": False,
                     "gated": r.gated, "lastModified": r.last_modified, "tags": ["gguf"]}
                    for rid, r in hub.repos.items() if text in rid.lower()]
            hits.sort(key=lambda h: -h["downloads"])
            self._json(hits[:limit])

        def _info(self, repo_id: str) -> None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(401 if not self._authorized() else 404, "RepoNotFound", "Repository not found")
            self._json({"_id": repo_id, "id": repo_id, "sha": repo.commit, "gated": repo.gated, "private": False,
                        "downloads": repo.downloads, "likes": repo.likes, "lastModified": repo.last_modified,
                        "tags": ["gguf"], "siblings": [{"rfilename": p} for p in repo.files]})

        def _tree(self, repo_id: str, q) -> None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", "Repository not found")
            recursive = (q.get("recursive") or ["false"])[0].lower() in ("true", "1")
            entries, folders = [], set()
            for p, f in sorted(repo.files.items()):
                if "/" in p:
                    folders.add(p.rsplit("/", 1)[0])
                    if not recursive:
                        continue
                entry = {"type": "file", "oid": f.oid, "size": f.size, "path": p}
                if p.endswith(".gguf"):
                    entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": 134}
                entries.append(entry)
            entries += [{"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "path": d}  # noqa: S324
                        for d in sorted(folders)]
            self._json(entries)

        def _resolve(self, repo_id: str, revision: str, file_path: str) -> None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", "Repository not found")
            if revision not in (repo.commit, "main"):
                return self._error(404, "RevisionNotFound", "Invalid rev id")
            f = repo.files.get(file_path)
            if f is None:
                return self._error(404, "EntryNotFound", "Entry not found")
            if repo.gated:
                if not self._authorized():
                    return self._error(401, "GatedRepo", "Access to this model is restricted; you must be authenticated")
                if not hub.behaviour.granted:
                    return self._error(403, "GatedRepo", "Access to this model is restricted and you are not in the authorized list")
            self._send(302, b"", {"Location": f"{hub.cdn}/cdn/{f.sha256}", "X-Repo-Commit": repo.commit,
                                  "X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(f.size),
                                  "ETag": f'"{f.oid}"', "Accept-Ranges": "bytes"})

        # --- the CDN ------------------------------------------------------------------------
        def _cdn(self, sha: str) -> None:
            f = hub.blob(sha)
            if f is None:
                return self._error(404, None, "no such object")
            start, end = 0, f.size
            rng = re.match(r"^bytes=(\d+)-(\d*)$", self.headers.get("Range", ""))
            status = 200
            if rng:
                start = int(rng.group(1))
                end = min(int(rng.group(2)) + 1, f.size) if rng.group(2) else f.size
                status = 206
                if start >= f.size:
                    return self._send(416, b"", {"Content-Range": f"bytes */{f.size}"})
            record = [sha, start, 0]
            with hub.lock:
                hub.ranges.append((sha, start))
                hub.transfers.append(record)
                hub.sending += 1
            try:
                self._answer_blob(sha, f, start, end, status, record)
            finally:
                with hub.lock:
                    hub.sending -= 1
                    hub.idle.notify_all()

        def _answer_blob(self, sha: str, f: FakeFile, start: int, end: int, status: int, record: list) -> None:
            total = hub.behaviour.lie_total.get(sha, f.size)
            headers = {"ETag": f'"{sha}"', "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream",
                       "Content-Length": str(end - start)}
            if status == 206:
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{total}"
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command == "HEAD":
                return
            self._body(sha, f, start, end, record)

        def _body(self, sha: str, f: FakeFile, start: int, end: int, record: list) -> None:
            pos = start
            b = hub.behaviour
            try:
                while pos < end:
                    stop = min(pos + 256 * 1024, end)
                    for mark in (b.pause_at.get(sha), b.stall_at.get(sha), (b.change_at.get(sha) or (None,))[0]):
                        if mark is not None and pos < mark < stop:
                            stop = mark
                    if b.pause_at.get(sha) == pos:
                        hub.paused.set()
                        hub.release.wait(60)
                        b.pause_at.pop(sha, None)
                    if b.stall_at.get(sha) == pos:
                        time.sleep(30)  # the client's stall timeout is shorter: it gives up first
                        return
                    change = b.change_at.get(sha)
                    if change is not None and change[0] == pos:  # a new version replaces the file mid-transfer
                        _offset, new, repo_id = b.change_at.pop(sha)
                        path = next(p for p, x in hub.repos[repo_id].files.items() if x is f)
                        hub.repos[repo_id].files[path] = new
                        hub.repos[repo_id].commit = "1" * 40
                        f = new
                    data = f.read(pos, stop)
                    self.wfile.write(data)
                    with hub.lock:
                        hub.served[sha] = hub.served.get(sha, 0) + len(data)
                        record[2] += len(data)
                    pos = stop
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


# --- model files, as llama.cpp's converter writes them -------------------------------------------

def _vocab(w: GGUFWriter, n: int, merges: bool = False) -> None:
    w.add_tokenizer_model("gpt2" if merges else "llama")
    w.add_token_list([f"tok{i}" for i in range(n)])
    w.add_token_scores([0.0] * n)
    w.add_token_types([1] * n)
    if merges:  # a BPE vocabulary (Qwen's): about one merge per token
        w.add_token_merges([f"tok{i} tok{i + 1}" for i in range(n - 1)])


@functools.lru_cache(maxsize=64)
def tiny_gguf(arch: str = "llama", name: str = "Tiny", pad_mib: float = 2.0, nextn: int = 0, file_type: int = 15,
              split: tuple[int, int] | None = None, seed: int = 0) -> bytes:
    """A small real GGUF: a llama-shaped header and ``pad_mib`` of tensor data (random, so every file differs)."""
    hidden, blocks = 64, 2
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.gguf"
        w = GGUFWriter(str(path), arch)
        w.add_name(name)
        w.add_context_length(4096)
        w.add_embedding_length(hidden)
        w.add_block_count(blocks + nextn)
        w.add_feed_forward_length(128)
        w.add_head_count(4)
        w.add_head_count_kv(2)
        w.add_file_type(file_type)
        if nextn:
            w.add_uint32(f"{arch}.nextn_predict_layers", nextn)
        if split:
            w.add_uint16("split.no", split[0] - 1)
            w.add_uint16("split.count", split[1])
        if arch != "clip":
            _vocab(w, 256)
            w.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
        rng = np.random.default_rng(seed)
        rows = max(int(pad_mib * (1 << 20) / (hidden * 4)), 1)
        w.add_tensor("token_embd.weight", rng.standard_normal((rows, hidden), dtype=np.float32))
        for i in range(blocks):
            w.add_tensor(f"blk.{i}.attn_q.weight", rng.standard_normal((hidden, hidden), dtype=np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path.read_bytes()


# A 14B dense model, as a Qwen3-14B GGUF lays it out: 40 layers, hidden 5120, 40 heads (8 KV heads) of
# 128, feed-forward 17408, a 32k vocabulary here (Qwen's is 151k; see docs/benchmarks.md for the header bytes).
BIG_SHAPE = {"blocks": 40, "hidden": 5120, "heads": 40, "kv_heads": 8, "head_dim": 128, "ff": 17408, "vocab": 32000}
BIG_TYPES = {"Q2_K": (GGMLQuantizationType.Q2_K, 10), "Q4_K_M": (GGMLQuantizationType.Q4_K, 15),
             "Q6_K": (GGMLQuantizationType.Q6_K, 18), "Q8_0": (GGMLQuantizationType.Q8_0, 7)}


@functools.lru_cache(maxsize=16)
def big_header(quant: str, arch: str = "qwen3", nextn: int = 0, part: tuple[int, int] | None = None,
               vocab: int = BIG_SHAPE["vocab"], blocks: int = BIG_SHAPE["blocks"],
               merges: bool = False) -> tuple[bytes, int]:
    """(header bytes, the file's full size) of a 14B model in ``quant``: tensor infos only, no data."""
    s = dict(BIG_SHAPE, vocab=vocab, blocks=blocks)
    qtype, file_type = BIG_TYPES[quant]
    block, type_size = GGML_QUANT_SIZES[qtype]
    tensors: list[tuple[str, tuple[int, ...]]] = [("token_embd.weight", (s["vocab"], s["hidden"]))]
    q_dim, kv_dim = s["heads"] * s["head_dim"], s["kv_heads"] * s["head_dim"]
    for i in range(s["blocks"] + nextn):
        tensors += [(f"blk.{i}.attn_q.weight", (q_dim, s["hidden"])), (f"blk.{i}.attn_k.weight", (kv_dim, s["hidden"])),
                    (f"blk.{i}.attn_v.weight", (kv_dim, s["hidden"])), (f"blk.{i}.attn_output.weight", (s["hidden"], q_dim)),
                    (f"blk.{i}.ffn_gate.weight", (s["ff"], s["hidden"])), (f"blk.{i}.ffn_up.weight", (s["ff"], s["hidden"])),
                    (f"blk.{i}.ffn_down.weight", (s["hidden"], s["ff"]))]
        if i >= s["blocks"]:
            tensors.append((f"blk.{i}.nextn.eh_proj.weight", (s["hidden"], 2 * s["hidden"])))
    tensors.append(("output.weight", (s["vocab"], s["hidden"])))
    if part is not None:  # the converter's --split-max-tensors: consecutive tensors per part
        n = len(tensors)
        per = -(-n // part[1])
        tensors = tensors[(part[0] - 1) * per: part[0] * per]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "h.gguf"
        w = GGUFWriter(str(path), arch)
        if part is None or part[0] == 1:
            w.add_name("Big 14B")
            w.add_context_length(40960)
            w.add_embedding_length(s["hidden"])
            w.add_block_count(s["blocks"] + nextn)
            w.add_feed_forward_length(s["ff"])
            w.add_head_count(s["heads"])
            w.add_head_count_kv(s["kv_heads"])
            w.add_key_length(s["head_dim"])
            w.add_value_length(s["head_dim"])
            w.add_file_type(file_type)
            if nextn:
                w.add_uint32(f"{arch}.nextn_predict_layers", nextn)
            _vocab(w, s["vocab"], merges)
            w.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
        if part is not None:
            w.add_uint16("split.no", part[0] - 1)
            w.add_uint16("split.count", part[1])
        data = 0
        for name, shape in tensors:
            elements = int(np.prod(shape))
            nbytes = elements // block * type_size
            byte_shape = [shape[0], shape[1] // block * type_size]  # numpy order, a row in bytes (as the writer takes it)
            w.add_tensor_info(name, byte_shape, np.dtype(np.uint8), nbytes, raw_dtype=qtype)
            data += -(-nbytes // 32) * 32
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        w.close()
        head = path.read_bytes()
    return head, -(-len(head) // 32) * 32 + data


def tiny_repo() -> FakeRepo:
    """4 quants (one split in a folder named after it), an MTP head and a projector; all small and real."""
    files = {
        "tiny-Q4_K_M.gguf": real(tiny_gguf(pad_mib=2.0, seed=1)),
        "tiny-Q8_0.gguf": real(tiny_gguf(pad_mib=3.0, file_type=7, seed=2)),
        "tiny-F16.gguf": real(tiny_gguf(pad_mib=4.0, file_type=1, seed=3)),
        "Q6_K/tiny-Q6_K-00001-of-00002.gguf": real(tiny_gguf(pad_mib=1.25, file_type=18, split=(1, 2), seed=4)),
        "Q6_K/tiny-Q6_K-00002-of-00002.gguf": real(tiny_gguf(pad_mib=1.25, file_type=18, split=(2, 2), seed=5)),
        "mtp-tiny-Q8_0.gguf": real(tiny_gguf(pad_mib=0.5, nextn=1, file_type=7, seed=6)),
        "mmproj-tiny-F16.gguf": real(tiny_gguf(arch="clip", pad_mib=0.5, file_type=1, seed=7)),
        "README.md": real(b"# tiny\n"),
    }
    return FakeRepo(files, commit="a" * 40, downloads=5000)


def real(data: bytes) -> FakeFile:
    return FakeFile(data, len(data))


def big_repo(vocab: int = BIG_SHAPE["vocab"], merges: bool = False) -> FakeRepo:
    files: dict[str, FakeFile] = {}
    for quant in ("Q2_K", "Q4_K_M", "Q8_0"):
        head, size = big_header(quant, vocab=vocab, merges=merges)
        files[f"Big-14B-{quant}.gguf"] = FakeFile(head, size)
    for n in (1, 2):
        head, size = big_header("Q6_K", part=(n, 2), vocab=vocab, merges=merges)
        files[f"Q6_K/Big-14B-Q6_K-0000{n}-of-00002.gguf"] = FakeFile(head, size)
    files["mtp-Big-14B-Q8_0.gguf"] = real(tiny_gguf(arch="qwen3", pad_mib=0.2, nextn=1, seed=9))
    files["mmproj-Big-14B-F16.gguf"] = real(tiny_gguf(arch="clip", pad_mib=0.2, seed=10))
    return FakeRepo(files, commit="b" * 40, downloads=90000, likes=400)
