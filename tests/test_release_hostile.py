"""A hostile or broken release feed, met as a user's machine meets it through ``get-server``: one
``error:`` line and the exit code, nothing installed, nothing touched outside the launcher's cache.

- archives whose links climb out of the unpack folder one link at a time (tar and zip);
- answers that crash a JSON parser or have the wrong type where a list belongs;
- a digest listed but unreadable (refused; a missing one is recorded as computed);
- redirects to a plain-http LAN address or from https down to http (refused before any request).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from llama_launcher.cli.main import main as cli_main

from conftest import IN_CI
from fake_server import make_fake_server
from release_server import ReleaseServer, tar_gz, zip_bytes

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the fake llama-server is a POSIX script")
CPU = "llama-b11434-bin-ubuntu-x64.tar.gz"


@pytest.fixture
def user(tmp_path: Path, github: ReleaseServer) -> dict[str, str]:
    """A user's machine: settings outside the launcher's cache, the releases at the local server. The
    CLI runs as on Linux x64 without a GPU (``--backend cpu`` picks the asset the server holds)."""
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "settings.json").write_text('{"folders": ["/models"]}')
    cache = tmp_path / "server-cache"
    cache.mkdir()
    return {"LLAMA_LAUNCHER_SERVER_CACHE": str(cache), "LLAMA_LAUNCHER_RELEASES_URL": github.api_url,
            "LLAMA_LAUNCHER_HOME": str(home), "LLAMA_SERVER": ""}


def get_server(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llama_launcher", "get-server", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})


def one_error(out: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and out.stderr.count("error:") == 1, out.stderr
    return out.stderr.strip().splitlines()[-1]


def _cpu_asset_name(github: ReleaseServer) -> str:
    from llama_launcher.core.host.gpus import GpuInventory
    from llama_launcher.core.llama_server.fetch import fetch_release
    from llama_launcher.core.llama_server.releases import Platform, choose_download

    return choose_download(fetch_release(github.api_url), Platform.current(), GpuInventory(), "cpu").assets[0].name


def _chain(depth: int, final: str) -> list[tuple[str, str]]:
    """Links, each lexically inside the folder, each created through the one before and climbing one
    folder more; then ``final`` (a path below the folder ``depth`` levels up) made a link to "pwned"."""
    links = [("x/l1", ".."), ("x/l1/l2", "..")]
    prefix = "l2"
    for i in range(3, depth + 2):
        links.append((f"{prefix}/l{i}", ".."))
        prefix = f"{prefix}/l{i}"
    links.append((f"{prefix}/{final}", "pwned"))
    return links


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_a_chain_of_links_cannot_reach_a_file_outside_the_cache(user: dict[str, str], github: ReleaseServer,
                                                                tmp_path: Path, kind: str) -> None:
    settings = Path(user["LLAMA_LAUNCHER_HOME"]) / "config" / "settings.json"
    before = settings.read_bytes()
    name = _cpu_asset_name(github)
    # unpacked/ -> .staging-*/ -> server-cache/ -> tmp_path: three folders up, then home/config/settings.json
    links = _chain(3, "home/config/settings.json")
    server = make_fake_server(tmp_path / "fake", "b11434-current").read_bytes()
    if kind == "tar":
        import tarfile
        import time

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            info = tarfile.TarInfo("llama-b11434/llama-server")
            info.size, info.mode, info.mtime = len(server), 0o755, int(time.time())
            tar.addfile(info, io.BytesIO(server))
            for link, target in links:  # in this order: each is made through the previous one
                li = tarfile.TarInfo(link)
                li.type, li.linkname = tarfile.SYMTYPE, target
                tar.addfile(li)
        data = buf.getvalue()
        served = name if name.endswith(".tar.gz") else name.replace(".zip", ".tar.gz")
    else:
        data = zip_bytes({"llama-server": (server, 0o755)}, dict(links))
        served = name if name.endswith(".zip") else name.replace(".tar.gz", ".zip")
    if served != name:
        github.drop(name)
    github.serve(served, data)
    out = get_server("--download", "--backend", "cpu", env=user)
    line = one_error(out)
    assert line.startswith(f"error: {served} holds an entry inside a link") and "nothing was installed" in line
    assert settings.read_bytes() == before and not settings.is_symlink()
    assert not (tmp_path / "pwned").exists()
    assert os.listdir(user["LLAMA_LAUNCHER_SERVER_CACHE"]) == []


def test_an_ordinary_link_to_a_library_beside_it_still_installs(user: dict[str, str], github: ReleaseServer,
                                                                tmp_path: Path) -> None:
    server = make_fake_server(tmp_path / "fake", "b11434-current").read_bytes()
    name = _cpu_asset_name(github)
    if not name.endswith(".tar.gz"):
        pytest.skip("a tarball's SONAME links")  # pragma: no cover - macOS/Linux assets are tarballs
    github.serve(name, tar_gz({"llama-b11434/llama-server": (server, 0o755),
                               "llama-b11434/libllama.so.0.0.1": (b"\x7fELF", 0o644)},
                              {"llama-b11434/libllama.so.0": "libllama.so.0.0.1", "llama-b11434/libllama.so": "libllama.so.0"}))
    out = get_server("--download", "--backend", "cpu", "--json", env=user)
    assert out.returncode == 0, out.stderr
    folder = Path(json.loads(out.stdout)["path"]).parent
    assert os.readlink(folder / "libllama.so") == "libllama.so.0" and (folder / "libllama.so").read_bytes() == b"\x7fELF"


@pytest.mark.parametrize("answer,message", [
    (b"[" * 200_000, "is nested too deeply to be a release list; refusing it"),
    (json.dumps([{"tag_name": "b11434", "draft": False, "assets": 5}]).encode(), "holds no llama.cpp build"),
    (json.dumps({"tag_name": "b11434", "assets": {"name": "x"}}).encode(), "holds no llama.cpp build"),
    (json.dumps({"message": "Bad credentials\x1b[2J\nforged line"}).encode(),
     "GitHub answered: Bad credentials\\nforged line"),
    (b"\xff\xfe not json", "is not JSON"),
    (json.dumps([[[[]]]]).encode(), "holds no llama.cpp build"),
])
def test_a_hostile_answer_is_one_error_line(user: dict[str, str], github: ReleaseServer, answer: bytes,
                                            message: str) -> None:
    github.raw_answer = answer
    for args in (("--download", "--dry-run", "--json"), ("--download",)):
        line = one_error(get_server(*args, env=user))
        assert message in line, line
    assert os.listdir(user["LLAMA_LAUNCHER_SERVER_CACHE"]) == []


@pytest.mark.parametrize("digest,problem", [
    ("md5:0000", "'md5:0000' is not a SHA-256 digest"),
    ("sha256:abc", "'sha256:abc' is not a well-formed SHA-256 digest"),
    (5, "the digest is a number, not text"),
])
def test_a_listed_digest_that_cannot_be_read_is_refused(user: dict[str, str], github: ReleaseServer, tmp_path: Path,
                                                        digest, problem: str) -> None:
    name = _cpu_asset_name(github)
    github.serve_build(name, make_fake_server(tmp_path / "fake", "b11434-current"))
    next(a for a in github.release()["assets"] if a["name"] == name)["digest"] = digest
    line = one_error(get_server("--download", "--backend", "cpu", env=user))
    assert line == (f"error: the release lists a digest for {name} that cannot be checked ({problem}); "
                    "refusing to install it unverified (nothing was downloaded)")
    assert not any(r.startswith("/download/") for r in github.requests)
    assert os.listdir(user["LLAMA_LAUNCHER_SERVER_CACHE"]) == []


def test_without_a_listed_digest_the_computed_sha256_is_recorded(user: dict[str, str], github: ReleaseServer,
                                                                 tmp_path: Path) -> None:
    name = _cpu_asset_name(github)
    data = github.serve_build(name, make_fake_server(tmp_path / "fake", "b11434-current"), digest=False)
    out = get_server("--download", "--backend", "cpu", "--json", env=user)
    assert out.returncode == 0, out.stderr
    info = json.loads((Path(json.loads(out.stdout)["path"]).parent / "build_info.json").read_text())
    assert info["assets"][0]["sha256"] == hashlib.sha256(data).hexdigest() and info["assets"][0]["listed_digest"] is None
    assert "size checked (the release lists no digest)" in out.stderr


def test_a_redirect_to_a_plain_http_lan_address_is_refused_before_any_request(
        user: dict[str, str], github: ReleaseServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # run in this process, so a guard sees every connection the launcher would open: nothing may leave 127.0.0.1
    attempts: list[tuple[str, int]] = []
    real_connect = socket.create_connection

    def guard(address, *args, **kwargs):
        attempts.append(address)
        if address[0] not in ("127.0.0.1", "localhost"):
            raise OSError("the test refuses every connection that leaves this machine")
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guard)
    for k, v in user.items():
        monkeypatch.setenv(k, v)
    github.redirects["/mirror/releases"] = "http://192.168.7.20/repos/ggml-org/llama.cpp/releases"
    monkeypatch.setenv("LLAMA_LAUNCHER_RELEASES_URL", github.url + "/mirror/releases")
    assert cli_main(["get-server", "--download", "--dry-run", "--json"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"error: refusing the redirect from {github.url}/mirror/releases to "
                       "http://192.168.7.20/repos/ggml-org/llama.cpp/releases: only https addresses are used")
    assert all(host == "127.0.0.1" for host, _ in attempts) and attempts  # the LAN address was never asked

    # an asset's redirect is checked the same way
    monkeypatch.setenv("LLAMA_LAUNCHER_RELEASES_URL", github.api_url)
    name = _cpu_asset_name(github)
    github.serve(name, b"x" * 1000)
    github.redirects[f"/download/{name}"] = "http://192.168.7.20/evil.tar.gz"
    assert cli_main(["get-server", "--download", "--backend", "cpu"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        f"error: refusing the redirect from {github.url}/download/{name} to http://192.168.7.20/evil.tar.gz")
    assert all(host == "127.0.0.1" for host, _ in attempts)
    assert [p for p in os.listdir(user["LLAMA_LAUNCHER_SERVER_CACHE"])] == []


@pytest.fixture
def tls_cert(tmp_path: Path) -> tuple[str, str]:
    openssl = shutil.which("openssl")
    if openssl is None:
        if IN_CI:
            pytest.fail("openssl is missing")
        pytest.skip("openssl is missing")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


def test_a_redirect_from_https_down_to_http_is_refused_even_to_this_machine(
        user: dict[str, str], github: ReleaseServer, tls_cert: tuple[str, str]) -> None:
    secure = ReleaseServer(tls=tls_cert).start()
    try:
        secure.redirects["/repos/ggml-org/llama.cpp/releases"] = github.api_url  # http on 127.0.0.1: allowed alone
        env = {**user, "LLAMA_LAUNCHER_RELEASES_URL": secure.api_url, "SSL_CERT_FILE": tls_cert[0]}
        plain = get_server("--download", "--dry-run", "--json", env={**user})
        assert plain.returncode == 0, plain.stderr  # the plain-http server on its own is fine
        github.requests.clear()
        line = one_error(get_server("--download", "--dry-run", "--json", env=env))
        assert line == (f"error: refusing the redirect from {secure.api_url} to {github.api_url}: it leaves https")
        assert secure.requests and github.requests == []  # the http server was never asked
    finally:
        secure.stop()
