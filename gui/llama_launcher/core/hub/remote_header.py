"""A GGUF header read from the Hub without downloading the file: HTTP ``Range`` requests for the bytes
the header reader asks for, and nothing past them.

``gguf_header.read_header_from`` walks the header sequentially in 1 MiB chunks and seeks over what it
skips, so the bytes fetched are the header's, rounded up to a chunk; the tensor data is never asked for.
Every count in the header is still checked against the file's size, which here is the size the Hub's
listing gives (a header that claims more than that is an error, as for a file on disk). A header larger
than :data:`MAX_REMOTE_BYTES` is refused rather than fetched.
"""

from __future__ import annotations

import io
import re
import threading
from pathlib import PurePosixPath
from typing import Any, BinaryIO, cast

import httpx2
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import get_session, hf_raise_for_status

from llama_launcher.core.hub.client import HubClient, RemoteFile, explain
from llama_launcher.core.hub.repo_files import QuantGroup
from llama_launcher.core.models.catalog import group_models
from llama_launcher.core.models.gguf_header import GGUFError, read_header_from
from llama_launcher.core.models.model_info import ModelInfo, error_info, info_from_header

MAX_REMOTE_BYTES = 64 * 1024 * 1024  # the largest real headers (262k-token vocabularies) are ~20 MB
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class ByteCounter:
    """Bytes fetched, added up across threads (the benchmark and the tests read it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0
        self.requests = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.total += n
            self.requests += 1


class RangeFile(io.RawIOBase):
    """A read-only file over one URL: each ``read`` is one ``Range`` request for exactly those bytes."""

    def __init__(self, url: str, size: int, headers: dict[str, str], timeout: float, what: str,
                 counter: ByteCounter | None = None, limit: int = MAX_REMOTE_BYTES) -> None:
        super().__init__()
        self.url, self.size, self.headers, self.timeout, self.what = url, size, headers, timeout, what
        self.counter, self.limit = counter, limit
        self.pos = 0
        self.fetched = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(base + offset, 0)
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self.pos + n, self.size)
        if end <= self.pos:
            return b""
        if self.fetched + (end - self.pos) > self.limit:
            raise GGUFError(f"the header of {self.what} is larger than {self.limit >> 20} MiB; not read further")
        data = self._get(self.pos, end - 1)
        self.pos += len(data)
        return data

    def _get(self, first: int, last: int) -> bytes:
        # identity: the bytes of the file, never a compressed answer (as huggingface_hub asks for its HEAD)
        headers = dict(self.headers, Range=f"bytes={first}-{last}")
        headers["Accept-Encoding"] = "identity"
        want = last - first + 1
        got = bytearray()
        with get_session().stream("GET", self.url, headers=headers, timeout=self.timeout,
                                  follow_redirects=True) as r:
            hf_raise_for_status(r)
            if r.status_code == 206:
                m = _CONTENT_RANGE.match(r.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != first:
                    raise GGUFError(f"{self.what}: the server answered a range request with the wrong bytes "
                                    f"({r.headers.get('Content-Range', 'no Content-Range')[:60]})")
                if m.group(3) != "*" and int(m.group(3)) != self.size:
                    raise GGUFError(f"{self.what}: the server says the file has {int(m.group(3)):,} bytes, the "
                                    f"listing {self.size:,}; the repository may have changed: open it again")
            elif first:  # a 200 to a range from the middle: the whole file would follow; take none of it
                raise GGUFError(f"{self.what}: the server ignores range requests, so the header cannot be read "
                                "without downloading the whole file")
            for chunk in r.iter_bytes(64 * 1024):
                got += chunk[: want - len(got)]
                if len(got) >= want:
                    break  # a 200 sends the whole file: stop at what was asked (closing the stream)
        self.fetched += len(got)
        if self.counter is not None:
            self.counter.add(len(got))
        if len(got) < want:
            raise GGUFError(f"{self.what}: the server sent {len(got):,} of the {want:,} bytes asked for")
        return bytes(got)

    def fileno(self) -> int:  # the header reader asks for holes of sparse files; a URL has none
        raise io.UnsupportedOperation("a remote file has no descriptor")


def read_remote_info(client: HubClient, repo_id: str, commit: str, f: RemoteFile,
                     counter: ByteCounter | None = None, prefix: int | None = None) -> ModelInfo:
    """One remote file's ModelInfo (its ``path`` is ``repo_id/path``); never raises: errors are a field.

    With ``prefix``, only that many bytes are read: a longer header gives the metadata up to there and
    no tensor counts (``parameters`` None), which :func:`read_quant` then takes from a sibling quant."""
    path = PurePosixPath(repo_id) / f.path
    fh = RangeFile(client.resolve_url(repo_id, f.path, commit), f.size, client.headers(), client.timeout,
                   f.path, counter)
    try:  # read, seek and tell are all the reader uses of a file
        header = read_header_from(cast(BinaryIO, fh), f.size, path, prefix)
    except GGUFError as exc:
        return _error(path, str(exc), f.size)
    except (HfHubHTTPError, httpx2.HTTPError, OSError) as exc:
        return _error(path, explain(exc, client.endpoint, repo_id), f.size)
    info = info_from_header(header, f.size)
    if not header.complete:
        info.parameters = info.trunk_parameters = info.mtp_parameters = None
    return info


def _error(path: PurePosixPath, message: str, size: int) -> ModelInfo:
    info = error_info(path, message)
    info.file_size = size
    return info


# The metadata that must agree before a quant borrows a sibling's tensor counts: the same model,
# quantized differently. llama.cpp's converter writes general.* and these architecture keys before the
# tokenizer (conversion/base.py: prepare_metadata, then set_vocab), and llama-quantize keeps that order,
# so the first few KB hold them even when a large vocabulary makes the header several megabytes.
SAME_MODEL_KEYS = ("block_count", "embedding_length", "feed_forward_length", "attention.head_count",
                   "attention.head_count_kv", "context_length", "expert_count", "nextn_predict_layers")
PREFIX_BYTES = 256 * 1024  # general.* and the architecture keys: a few KB in real files


def same_model(a: ModelInfo, b: ModelInfo) -> bool:
    if a.architecture != b.architecture or a.architecture is None:
        return False
    shared = [k for k in SAME_MODEL_KEYS if k in a.arch_meta or k in b.arch_meta]
    return "block_count" in shared and all(a.arch_meta.get(k) == b.arch_meta.get(k) for k in shared)


def borrow_counts(info: ModelInfo, ref: ModelInfo) -> ModelInfo:
    """A quant whose header was read as a prefix, completed with its sibling's tensor counts (the same
    weights, quantized differently: the parameter counts per block are the same, only the bytes differ)."""
    info.parameters, info.trunk_parameters = ref.parameters, ref.trunk_parameters
    info.mtp_parameters, info.block_parameters = ref.mtp_parameters, list(ref.block_parameters)
    info.vocab_size, info.vocab_hash = ref.vocab_size, ref.vocab_hash
    for key in ("vocab_size",):
        if key in ref.arch_meta and key not in info.arch_meta:
            info.arch_meta[key] = ref.arch_meta[key]
    return info


def read_quant(client: HubClient, repo_id: str, commit: str, group: QuantGroup,
               counter: ByteCounter | None = None, reference: ModelInfo | None = None) -> ModelInfo:
    """A quant as the catalog would list it once downloaded.

    Without ``reference``, every part's header is read whole (a split model's tensors are spread over
    its parts) and grouped by the catalog's own rules. With one (a sibling quant read whole), only the
    first :data:`PREFIX_BYTES` of part 1 are read: when its metadata says it is the same model, the
    tensor counts are the reference's; otherwise the quant is read whole after all."""
    if reference is not None:
        first = read_remote_info(client, repo_id, commit, group.first, counter, PREFIX_BYTES)
        if first.error is not None:
            return first
        if first.parameters is not None and group.split_count <= 1:
            return first  # the whole header fitted in the prefix
        if same_model(first, reference):
            info = borrow_counts(first, reference)
            info.file_size = group.size
            if group.split_count > 1:
                info.split_count = group.split_count
                info.split_parts = [str(PurePosixPath(repo_id) / f.path) for f in group.files]
            return _missing(info, group)
    infos = [read_remote_info(client, repo_id, commit, f, counter) for f in group.files]
    models, _ = group_models(infos)
    return _missing(models[0] if models else infos[0], group)


def _missing(info: ModelInfo, group: QuantGroup) -> ModelInfo:
    if group.missing_parts and info.error is None:
        info.error = f"the repository lacks {group.missing_parts} of the {group.split_count} parts"
        info.launchable = False
    return info


def describe_remote(info: ModelInfo) -> dict[str, Any]:
    """The header facts shown next to a quant (architecture, parameters, context, MTP layers)."""
    return {"architecture": info.architecture, "parameters": info.parameters, "context_length": info.context_length,
            "nextn_predict_layers": info.nextn_predict_layers, "quantization": info.quantization,
            "error": info.error}
