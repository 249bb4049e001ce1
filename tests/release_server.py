"""A local HTTP server that plays GitHub for the downloader: a recorded release-API answer and archives.

The answer is ``fixtures/releases/github-releases-b11434.json`` (made from llama.cpp's workflow
files; see its README). An asset a test provides with ``serve()`` gets a local URL and the archive's
own size and SHA-256 digest in the answer, so the downloader checks them exactly as it would check
GitHub's. A behaviour per asset makes the server cut the body short, flip one byte, or trickle
slowly (for cancelling); ``raw_answer`` replaces the API answer with any bytes (hostile answers);
``redirects`` answers a path with a 302 to any address; ``tls`` serves https with a test
certificate. Only 127.0.0.1 is bound.

:func:`release_archive` packs files the way llama.cpp's ``release.yml`` packs each kind of asset:
Linux/macOS tarballs under one top folder ``llama-bN/``, the Linux CUDA runtime under
``cudart-llama-bN-bin-ubuntu-cuda-<v>-<arch>/``, Windows zips flat (tests/test_release_workflows.py
checks these layouts against the workflow files).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).parent / "fixtures" / "releases" / "github-releases-b11434.json"
API_PATH = "/repos/ggml-org/llama.cpp/releases"


def recorded_answer() -> list[dict[str, Any]]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


class ReleaseServer:
    def __init__(self, answer: list[dict[str, Any]] | None = None, tls: tuple[str, str] | None = None) -> None:
        self.answer = copy.deepcopy(answer if answer is not None else recorded_answer())
        self.files: dict[str, bytes] = {}
        self.behaviour: dict[str, str] = {}
        self.requests: list[str] = []
        self.raw_answer: bytes | None = None
        self.redirects: dict[str, str] = {}  # path -> Location
        self.scheme = "https" if tls else "http"
        self.release_gate = threading.Event()  # "slow" bodies wait for it between chunks, "held" ones until it is set
        self.sent: dict[str, int] = {}  # bytes of each download path written so far
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.requests.append(self.path)
                path = self.path.split("?", 1)[0]
                if path in server.redirects:
                    self.send_response(302)
                    self.send_header("Location", server.redirects[path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path == API_PATH:
                    self._send(200, server.raw_answer if server.raw_answer is not None else
                               json.dumps(server.answer).encode())
                elif path.startswith(API_PATH + "/tags/"):
                    tag = path.rsplit("/", 1)[1]
                    hit = [r for r in server.answer if r.get("tag_name") == tag]
                    if hit:
                        self._send(200, json.dumps(hit[0]).encode())
                    else:
                        self._send(404, b'{"message": "Not Found"}')
                elif path.startswith("/download/"):
                    self._download(path.rsplit("/", 1)[1])
                else:
                    self._send(404, b'{"message": "Not Found"}')

            def _download(self, name: str) -> None:
                body = server.files.get(name)
                if body is None:
                    self._send(404, b"Not Found", "text/plain")
                    return
                how = server.behaviour.get(name, "")
                if how == "flip":
                    middle = len(body) // 2
                    body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1:]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if how == "short":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                step = 64 * 1024
                for i in range(0, len(body), step):
                    try:
                        self.wfile.write(body[i:i + step])
                    except (BrokenPipeError, ConnectionResetError):
                        return  # the client gave up (a cancel): fine
                    server.sent[self.path] = server.sent.get(self.path, 0) + len(body[i:i + step])
                    if how == "slow":
                        server.release_gate.wait(0.05)
                    elif how == "held":  # the rest only once the test releases it: a cancel must not wait for it
                        server.release_gate.wait(300)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls:
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="release-server", daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.url + API_PATH + "?per_page=20"

    def release(self, tag: str = "b11434") -> dict[str, Any]:
        return next(r for r in self.answer if r["tag_name"] == tag)

    def serve(self, name: str, content: bytes, tag: str = "b11434", digest: bool = True,
              behaviour: str = "") -> None:
        """Serve ``content`` as asset ``name``; the answer lists its real size and digest."""
        self.files[name] = content
        self.behaviour[name] = behaviour
        rel = self.release(tag)
        entry = next((a for a in rel["assets"] if a["name"] == name), None)
        if entry is None:
            entry = copy.deepcopy(rel["assets"][0])
            entry["name"] = name
            rel["assets"].append(entry)
        entry["browser_download_url"] = f"{self.url}/download/{name}"
        entry["size"] = len(content)
        entry["digest"] = "sha256:" + hashlib.sha256(content).hexdigest() if digest else None

    def serve_build(self, name: str, server: Path, tag: str = "b11434", extra: dict[str, bytes] | None = None,
                    **kw: Any) -> bytes:
        """Serve asset ``name`` packed like llama.cpp packs it, holding ``server`` as its llama-server."""
        data = release_archive(name, tag, server, extra)
        self.serve(name, data, tag=tag, **kw)
        return data

    def drop(self, name_part: str, tag: str = "b11434") -> None:
        rel = self.release(tag)
        rel["assets"] = [a for a in rel["assets"] if name_part not in a["name"]]

    def start(self) -> ReleaseServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release_gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(10)


def tar_gz(files: dict[str, tuple[bytes, int]], links: dict[str, str] | None = None) -> bytes:
    """A .tar.gz like llama.cpp's: ``{arcname: (content, mode)}``, plus symbolic links."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        for name, (content, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), mode, int(time.time())
            tar.addfile(info, io.BytesIO(content))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def zip_bytes(files: dict[str, tuple[bytes, int]], links: dict[str, str] | None = None) -> bytes:
    """A .zip like llama.cpp's Windows ones (flat), with Unix modes (and links) recorded."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, (content, mode) in files.items():
            info = zipfile.ZipInfo(name, time.localtime()[:6])
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, content)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name, time.localtime()[:6])
            info.external_attr = (0o120777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


def server_archive(binary: Path, asset_name: str, tag: str = "b11434") -> bytes:
    """The real llama-server packed the way llama.cpp packs the asset ``asset_name``."""
    exe = binary.read_bytes()
    libs = {p.name: (p.read_bytes(), 0o644) for p in binary.parent.iterdir()
            if p.is_file() and (p.suffix in (".so", ".dylib", ".dll") or ".so." in p.name)}
    name = "llama-server.exe" if os.name == "nt" else "llama-server"
    if asset_name.endswith(".tar.gz"):  # one top folder, llama-bNNNN/
        top = f"llama-{tag}"
        files = {f"{top}/{name}": (exe, 0o755), f"{top}/LICENSE": (b"MIT License\n", 0o644)}
        files.update({f"{top}/{k}": v for k, v in libs.items()})
        return tar_gz(files)
    return zip_bytes({name: (exe, 0o755), "LICENSE": (b"MIT License\n", 0o644), **libs})


def release_archive(name: str, tag: str, server: Path | None = None, extra: dict[str, bytes] | None = None) -> bytes:
    """Asset ``name`` laid out as llama.cpp's release.yml packs it. A server archive holds ``server`` as
    llama-server (and ``extra`` files beside it, e.g. the backend library); a CUDA runtime archive holds
    the three libraries its workflow step copies (``extra`` replaces them)."""
    exe_name = "llama-server.exe" if os.name == "nt" else "llama-server"
    if name.startswith("cudart-"):
        if name.endswith(".tar.gz"):  # cp -L libcudart.so.<major>, libcublas..., then --transform to its folder
            major = name.split("-cuda-", 1)[1].split(".", 1)[0]
            libs = extra or {f"libcudart.so.{major}": b"\x7fELF cudart", f"libcublas.so.{major}": b"\x7fELF cublas",
                             f"libcublasLt.so.{major}": b"\x7fELF cublasLt"}
            top = name[: -len(".tar.gz")]
            return tar_gz({f"{top}/{k}": (v, 0o644) for k, v in libs.items()})
        major = name.split("-cuda-", 1)[1].split(".", 1)[0]  # 7z a cudart-...zip $dst\* : flat
        libs = extra or {f"cudart64_{major}.dll": b"MZ cudart", f"cublas64_{major}.dll": b"MZ cublas",
                         f"cublasLt64_{major}.dll": b"MZ cublasLt"}
        return zip_bytes({k: (v, 0o644) for k, v in libs.items()})
    assert server is not None, "a server archive needs its llama-server"
    files = {exe_name: (server.read_bytes(), 0o755), "LICENSE": (b"MIT License\n", 0o644)}
    files.update({k: (v, 0o644) for k, v in (extra or {}).items()})
    if name.endswith(".tar.gz"):  # tar --transform "s,^\.,llama-bN," -C ./build/bin .
        return tar_gz({f"llama-{tag}/{k}": v for k, v in files.items()})
    return zip_bytes(files)  # 7z a llama-bin-win-....zip .\build\bin\Release\* : files at the root
