"""The downloader against a local server playing GitHub: the real llama-server installs; every failure
is one line and leaves no half-installed folder."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections import namedtuple
from pathlib import Path

import pytest

from llama_launcher.core.host.gpus import GpuInventory
from llama_launcher.core.llama_server import archive as release_archive
from llama_launcher.core.llama_server import discovery as binary_discovery
from llama_launcher.core.llama_server import download as release_download
from llama_launcher.core.llama_server import fetch as release_fetch
from llama_launcher.core.llama_server.download import DownloadCancelled, DownloadError, install
from llama_launcher.core.llama_server.fetch import fetch_release
from llama_launcher.core.llama_server.releases import NoAssetError, Platform, choose_download, parse_releases
from llama_launcher.core.state.cancel import CancelToken

from release_server import ReleaseServer, recorded_answer, server_archive, tar_gz, zip_bytes

EXE = binary_discovery.EXE


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty server folder (the real build cache stays untouched)."""
    root = tmp_path / "server-cache"
    root.mkdir()
    monkeypatch.setenv("LLAMA_LAUNCHER_SERVER_CACHE", str(root))
    return root


@pytest.fixture(scope="session")
def real_archive(llama_server: str) -> dict[str, bytes]:
    """This platform's CPU asset name, packed the way llama.cpp packs it, holding the real llama-server."""
    name = choose_download(parse_releases(recorded_answer()), Platform.current(), GpuInventory()).assets[0].name
    return {name: server_archive(Path(llama_server), name)}


def cpu_choice(github: ReleaseServer):
    return choose_download(fetch_release(github.api_url), Platform.current(), GpuInventory())


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_the_release_list_is_read_and_the_pointer_release_skipped(github: ReleaseServer) -> None:
    assert fetch_release(github.api_url).tag == "b11434"
    assert fetch_release(github.api_url, "b11433").tag == "b11433"
    with pytest.raises(DownloadError, match=r"^llama.cpp release b1 was not found \(.*/tags/b1 answered 404\)$"):
        fetch_release(github.api_url, "b1")  # not in the list: asked by tag, which GitHub answers 404


def test_an_unreachable_or_plain_http_server_is_one_line() -> None:
    with pytest.raises(DownloadError) as err:
        fetch_release("http://127.0.0.1:9/repos/x/releases")  # nothing listens on the discard port
    assert str(err.value).startswith("cannot reach 127.0.0.1") and "\n" not in str(err.value)
    with pytest.raises(DownloadError, match="only https addresses are used"):
        fetch_release("http://example.com/releases")


def test_the_real_llama_server_installs_and_discovery_finds_it_first(
        github: ReleaseServer, cache: Path, real_archive: dict[str, bytes]) -> None:
    (name, data), = real_archive.items()
    github.serve(name, data)
    older = cache / "b9000"
    older.mkdir()
    shutil.copy2(sys.executable, older / EXE)  # an older build already installed
    seen: list[tuple[str, float | None]] = []
    result = install(cpu_choice(github), progress=lambda m, f: seen.append((m, f)))
    target = cache / "b11434" / EXE
    assert result.path == target and target.is_file()
    assert result.capabilities.build_number == 11434 and result.capabilities.mtp_token == "draft-mtp"
    version = subprocess.run([str(target), "--version"], capture_output=True, text=True, timeout=60)
    assert "build 11434" in version.stdout + version.stderr
    info = json.loads((cache / "b11434" / "build_info.json").read_text())
    assert info["source"] == "llama.cpp release" and info["release"] == "b11434" and info["backend"] == "cpu"
    assert info["assets"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert leftovers(cache) == ["b11434", "b9000"]  # no staging folder left
    assert binary_discovery.cached_builds()[:2] == [target, older / EXE]  # newest build first
    found = next(c for c in binary_discovery.candidates() if c.path == str(target))
    assert found.source == "llama.cpp release b11434 (cpu), downloaded by the launcher"
    fracs = [f for _, f in seen if f is not None]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0 and any("downloading" in m for m, _ in seen)
    assert any(r.startswith("/download/") for r in github.requests)


def test_an_existing_build_is_replaced_only_by_a_verified_one(
        github: ReleaseServer, cache: Path, real_archive: dict[str, bytes]) -> None:
    (name, data), = real_archive.items()
    old = cache / "b11434"
    old.mkdir()
    (old / EXE).write_text("the previous build")
    github.serve(name, data, behaviour="flip")
    with pytest.raises(DownloadError):
        install(cpu_choice(github))
    assert (old / EXE).read_text() == "the previous build" and leftovers(cache) == ["b11434"]
    github.serve(name, data)
    install(cpu_choice(github))
    assert (old / EXE).read_bytes() != b"the previous build" and leftovers(cache) == ["b11434"]


Case = namedtuple("Case", "content behaviour digest message")
JUNK = os.urandom(300_000)


@pytest.mark.parametrize("case", [
    Case(JUNK, "short", True, "was cut short"),
    Case(JUNK, "flip", True, "does not match the SHA-256 digest the release lists"),
    Case(JUNK, "", True, "is not a valid archive"),  # listed digest matches: the archive itself is corrupt
    Case(JUNK, "", False, "is not a valid archive"),  # an older answer without digests
], ids=["cut-short", "digest-mismatch", "corrupt-archive", "corrupt-no-digest"])
def test_a_bad_download_is_one_line_and_installs_nothing(github: ReleaseServer, cache: Path, case: Case) -> None:
    name = cpu_choice(github).assets[0].name
    github.serve(name, case.content, digest=case.digest, behaviour=case.behaviour)
    with pytest.raises(DownloadError) as err:
        install(cpu_choice(github))
    assert case.message in str(err.value) and "\n" not in str(err.value)
    assert leftovers(cache) == []


def test_a_cancel_from_another_thread_stops_the_download_at_once(github: ReleaseServer, cache: Path) -> None:
    name = cpu_choice(github).assets[0].name
    data = os.urandom(8 * 1024 * 1024)
    github.serve(name, data, behaviour="held")  # one chunk, then nothing until the test releases the rest
    cancel = CancelToken()  # what the window's download job holds: a cancel also ends a read that waits
    timer = threading.Timer(0.5, cancel.cancel)
    timer.start()
    with pytest.raises(DownloadCancelled, match="download cancelled; nothing was installed"):
        install(cpu_choice(github), cancel=cancel)
    # it ended while the server still held the rest back: the cancel did not wait for the transfer
    assert sum(github.sent.values()) < len(data) and not github.release_gate.is_set()
    timer.cancel()
    assert leftovers(cache) == []


def test_a_full_disk_is_said_before_downloading(github: ReleaseServer, cache: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    name = cpu_choice(github).assets[0].name
    github.serve(name, JUNK)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(release_download.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 5_000_000, 5_000_000))
    with pytest.raises(DownloadError, match=r"not enough free disk space in .*: llama.cpp b11434 needs about 68 MB, "
                                            r"5 MB are free"):
        install(cpu_choice(github))
    assert not any(r.startswith("/download/") for r in github.requests) and leftovers(cache) == []


@pytest.mark.parametrize("stage", ["download", "unpack"])
def test_a_disk_that_fills_up_while_writing_is_one_line(github: ReleaseServer, cache: Path,
                                                        monkeypatch: pytest.MonkeyPatch, stage: str) -> None:
    name = cpu_choice(github).assets[0].name
    exe = os.urandom(2_000_000)
    github.serve(name, tar_gz({f"llama-b11434/{EXE}": (exe, 0o755)}) if name.endswith(".tar.gz") else
                 zip_bytes({EXE: (exe, 0o755)}))
    written = []

    def fill_up(fh, chunk: bytes) -> None:  # the disk fills up after the first chunk of that stage
        if (stage == "unpack") == ("unpacked" in str(fh.name)):
            if written:
                raise OSError(errno.ENOSPC, "No space left on device")
            written.append(len(chunk))
        fh.write(chunk)

    monkeypatch.setattr(release_fetch, "write_chunk", fill_up)
    monkeypatch.setattr(release_archive, "write_chunk", fill_up)
    with pytest.raises(DownloadError, match="the disk is full: llama.cpp could not be written to") as err:
        install(cpu_choice(github))
    assert str(err.value).split(" to ", 1)[1].split(";")[0].endswith("unpacked") == (stage == "unpack")
    assert leftovers(cache) == []


def test_an_asset_missing_for_this_platform_is_one_line(github: ReleaseServer) -> None:
    name = cpu_choice(github).assets[0].name
    github.drop(name)
    with pytest.raises(NoAssetError) as err:
        cpu_choice(github)
    assert f"llama.cpp b11434 has no build for {Platform.current().label}" in str(err.value)


@pytest.mark.parametrize("kind", ["zip-dotdot", "tar-absolute", "tar-link-out", "zip-link-out"])
def test_an_archive_reaching_outside_its_folder_is_refused(github: ReleaseServer, cache: Path, tmp_path: Path,
                                                           kind: str) -> None:
    name = cpu_choice(github).assets[0].name
    evil = {"zip-dotdot": lambda: zip_bytes({"../../evil.txt": (b"x", 0o644)}),
            "tar-absolute": lambda: tar_gz({str(tmp_path / "evil.txt"): (b"x", 0o644)}),
            "tar-link-out": lambda: tar_gz({"llama-b11434/llama-server": (b"x", 0o755)},
                                           {"llama-b11434/lib.so": "../../../evil.txt"}),
            "zip-link-out": lambda: zip_bytes({"llama-server": (b"x", 0o755)}, {"lib.so": "/etc/passwd"})}[kind]()
    # the test server serves whatever name the platform wants; the content decides the format
    served = name if (name.endswith(".zip")) == kind.startswith("zip") else \
        name.replace(".zip", ".tar.gz") if kind.startswith("tar") else name.replace(".tar.gz", ".zip")
    if served != name:
        github.drop(name)
    github.serve(served, evil)
    with pytest.raises(DownloadError, match="unsafe path|points outside the build"):
        install(cpu_choice(github))
    assert not (tmp_path / "evil.txt").exists() and not (cache.parent / "evil.txt").exists()
    assert leftovers(cache) == []


def test_a_server_that_does_not_run_here_is_not_installed(github: ReleaseServer, cache: Path) -> None:
    name = cpu_choice(github).assets[0].name
    junk = b"\x7fELF not really a program" + os.urandom(1000)
    archive = tar_gz({f"llama-b11434/{EXE}": (junk, 0o755)}) if name.endswith(".tar.gz") else \
        zip_bytes({EXE: (junk, 0o755)})
    github.serve(name, archive)
    with pytest.raises(DownloadError, match="the downloaded llama-server does not run on this machine"):
        install(cpu_choice(github))
    assert leftovers(cache) == []


def test_an_archive_without_llama_server_is_refused(github: ReleaseServer, cache: Path) -> None:
    name = cpu_choice(github).assets[0].name
    archive = tar_gz({"llama-b11434/LICENSE": (b"MIT", 0o644)}) if name.endswith(".tar.gz") else \
        zip_bytes({"LICENSE": (b"MIT", 0o644)})
    github.serve(name, archive)
    with pytest.raises(DownloadError, match=f"holds no {EXE}"):
        install(cpu_choice(github))
    assert leftovers(cache) == []


def test_a_zip_of_an_older_release_installs_too(github: ReleaseServer, cache: Path,
                                               real_archive: dict[str, bytes], llama_server: str) -> None:
    # before b7956 every asset was a .zip: the same build packed as a zip installs the same way
    plat = Platform.current()
    stem = {"linux": f"ubuntu-{plat.arch}", "macos": f"macos-{plat.arch}", "windows": f"win-cpu-{plat.arch}"}[plat.os]
    name = f"llama-b11434-bin-{stem}.zip"
    github.drop(f"bin-{stem}.")
    github.serve(name, server_archive(Path(llama_server), name))
    result = install(cpu_choice(github))
    assert result.path == cache / "b11434" / EXE and result.capabilities.build_number == 11434


def test_a_corrupt_or_oversized_build_record_is_set_aside_and_the_build_still_listed(cache: Path) -> None:
    from llama_launcher.core.llama_server import build_record
    from llama_launcher.core.state.state_files import drain_notices

    drain_notices()
    for number, content in ((9001, b"[1, 2]"), (9002, b" " * (build_record.MAX_BYTES + 1) + b"{}")):
        folder = cache / f"b{number}"
        folder.mkdir()
        shutil.copy2(sys.executable, folder / EXE)
        (folder / build_record.BUILD_INFO).write_bytes(content)
    sources = {c.path: c.source for c in binary_discovery.candidates()}
    for number in (9001, 9002):
        folder = cache / f"b{number}"
        assert sources[str(folder / EXE)] == "launcher cache"
        assert not (folder / build_record.BUILD_INFO).exists()  # moved aside, not read again and again
        assert [p.name.split(".corrupt-")[0] for p in folder.glob("*.corrupt-*")] == [build_record.BUILD_INFO]
    notes = drain_notices()
    assert len(notes) == 2 and all(n.startswith("the llama-server build record was corrupt") for n in notes)


@pytest.mark.skipif(sys.platform == "win32", reason="the fake llama-server is a POSIX script")
def test_a_release_of_the_source_builds_number_goes_beside_it_never_over_it(
        github: ReleaseServer, cache: Path, tmp_path: Path) -> None:
    from llama_launcher.core.llama_server import build_record, provisioning

    from fake_server import make_fake_server

    source = provisioning.install_dir()  # the launcher's own source build, its record as written before "source" existed
    make_fake_server(source, "b11434-current")
    record = {"package": f"{provisioning.SDIST_PACKAGE}=={provisioning.SDIST_VERSION}", "build": 11434,
              "flags": provisioning.CMAKE_FLAGS}
    (source / build_record.BUILD_INFO).write_text(json.dumps(record))
    before = (source / EXE).read_bytes()
    name = cpu_choice(github).assets[0].name
    github.serve(name, server_archive(make_fake_server(tmp_path / "fake", "b11434-current"), name))
    choice = cpu_choice(github)
    assert choice.build == provisioning.BUILD_NUMBER
    seen: list[str] = []
    result = install(choice, progress=lambda m, f: seen.append(m))
    beside = cache / "b11434-release"
    assert result.path == beside / EXE and result.capabilities.build_number == 11434
    assert (source / EXE).read_bytes() == before and json.loads((source / build_record.BUILD_INFO).read_text()) == record
    assert build_record.is_release(build_record.read(beside))
    assert any("holds the launcher's own source build; the release goes beside it, in b11434-release" in m
               for m in seen)
    assert leftovers(cache) == ["b11434", "b11434-release"]
    assert binary_discovery.cached_builds() == [source / EXE, beside / EXE]
    sources = {c.path: c.source for c in binary_discovery.candidates()}
    assert sources[str(source / EXE)] == "built by the launcher"
    assert sources[str(beside / EXE)] == "llama.cpp release b11434 (cpu), downloaded by the launcher"
    assert binary_discovery.cache_label(str(beside / EXE)) == sources[str(beside / EXE)]
    install(choice)  # again: the release beside it is replaced, the source build still is not
    assert (source / EXE).read_bytes() == before and leftovers(cache) == ["b11434", "b11434-release"]
    assert not provisioning.lacks_fit_tool(beside / EXE)
