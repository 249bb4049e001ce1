"""Downloads from the fake Hub: placed where huggingface_hub and the catalog find them, verified, resumed
after a cancel without fetching again what is on disk (counted at the server), and every way one stops."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from huggingface_hub import try_to_load_from_cache

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.hub.client import HubClient
from llama_launcher.core.hub.download import DownloadCancelled, DownloadError, Progress, Transfer, plan_items
from llama_launcher.core.hub.repo_report import files_for, judge_repo
from llama_launcher.core.models.catalog import PARTIAL_SUFFIX, scan

from conftest import wait_for
from fake_hub import FakeFile, FakeRepo, real, tiny_gguf

TINY = "tiny/Tiny-GGUF"
HW = Hardware("x86-64", 65536, 60000, False, [])


def client(hub) -> HubClient:
    return HubClient(endpoint=hub.url, cache_dir=hub.cache_dir, timeout=10)


def transfer(hub, quant: str, folder: Path | None = None, **kw) -> Transfer:
    c = client(hub)
    report = judge_repo(c, TINY, HW)
    items = plan_items(TINY, files_for(report, quant, kw.pop("mtp_head", True), kw.pop("projector", True)),
                       hub.cache_dir, folder)
    return Transfer(c, TINY, report.listing.commit, items, **kw)


def sha(hub, path: str) -> str:
    return hub.repos[TINY].files[path].sha256


def test_a_split_quant_with_its_head_and_projector_lands_in_the_cache_the_library_reads(fake_hub) -> None:
    seen: list[Progress] = []
    placed = transfer(fake_hub, "Q6_K", progress=seen.append).run()
    commit = fake_hub.repos[TINY].commit
    for path in ("Q6_K/tiny-Q6_K-00001-of-00002.gguf", "Q6_K/tiny-Q6_K-00002-of-00002.gguf",
                 "mtp-tiny-Q8_0.gguf", "mmproj-tiny-F16.gguf"):
        for revision in (commit, None):  # by commit, and as "main" (what other tools ask for offline)
            found = try_to_load_from_cache(TINY, path, cache_dir=fake_hub.cache_dir, revision=revision)
            assert isinstance(found, str) and Path(found).read_bytes() == fake_hub.repos[TINY].files[path].head
    assert placed[0] == Path(try_to_load_from_cache(TINY, "Q6_K/tiny-Q6_K-00001-of-00002.gguf",
                                                    cache_dir=fake_hub.cache_dir, revision=commit))
    assert seen[-1].done == seen[-1].total == sum(p.stat().st_size for p in placed)
    result = scan([fake_hub.cache_dir], include_defaults=False, save_cache=False)
    model = next(m for m in result.models if m.split_count == 2)
    assert model.launchable and model.path == str(placed[0]) and len(model.split_parts) == 2
    assert [Path(p).name for p in model.mmproj] == ["mmproj-tiny-F16.gguf"]
    assert not list(Path(fake_hub.cache_dir).rglob(f"*{PARTIAL_SUFFIX}"))


def test_into_a_models_folder_everything_sits_together(fake_hub, tmp_path) -> None:
    placed = transfer(fake_hub, "Q8_0", folder=tmp_path / "models").run()
    assert [p.name for p in placed] == ["tiny-Q8_0.gguf", "mtp-tiny-Q8_0.gguf", "mmproj-tiny-F16.gguf"]
    assert {p.parent for p in placed} == {tmp_path / "models" / "Tiny-GGUF"}
    names = [m.file_name for m in scan([tmp_path / "models"], include_defaults=False, save_cache=False).models]
    assert "tiny-Q8_0.gguf" in names


def _cancel_at(hub, t: Transfer, at: int, sha256: str) -> BaseException | None:
    hub.behaviour.pause_at[sha256] = at
    errors: list[BaseException] = []

    def run() -> None:
        try:
            t.run()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    th = threading.Thread(target=run)
    th.start()
    assert hub.paused.wait(30), "the server never sent the first 40%"
    assert wait_for(lambda: t.done >= at, 30), "the transfer never reached 40%"
    t.cancel.set()
    hub.release.set()
    th.join(30)
    assert not th.is_alive()
    return errors[0] if errors else None


def test_cancelled_at_40_percent_then_resumed_fetches_only_the_rest(fake_hub, tmp_path) -> None:
    path = "tiny-F16.gguf"
    size = fake_hub.repos[TINY].files[path].size
    t = transfer(fake_hub, "F16", mtp_head=False, projector=False)
    err = _cancel_at(fake_hub, t, int(size * 0.4), sha(fake_hub, path))
    assert isinstance(err, DownloadCancelled) and "kept" in str(err) and "resume" in str(err)
    partial = t.items[0].partial
    kept = partial.stat().st_size
    assert kept == int(size * 0.4) and partial.name.endswith(PARTIAL_SUFFIX)
    result = scan([fake_hub.cache_dir], include_defaults=False, save_cache=False)
    assert result.models == [] and any("an unfinished download" in n for n in result.notes)

    fake_hub.release.clear()
    seen: list[Progress] = []
    again = transfer(fake_hub, "F16", mtp_head=False, projector=False, progress=seen.append)  # reads the headers again
    fake_hub.reset_counts()
    placed = again.run()
    assert seen[0].kept == seen[0].done == kept and "were already on disk" in seen[0].text()
    assert fake_hub.ranges == [(sha(fake_hub, path), kept)]  # asked from where it stopped
    assert fake_hub.total_served() == size - kept  # nothing on disk was fetched again
    assert placed[0].read_bytes() == fake_hub.repos[TINY].files[path].head


def test_a_stalled_transfer_stops_with_words_and_keeps_what_arrived(fake_hub) -> None:
    path = "tiny-Q8_0.gguf"
    size = fake_hub.repos[TINY].files[path].size
    fake_hub.behaviour.stall_at[sha(fake_hub, path)] = size // 3
    t = transfer(fake_hub, "Q8_0", mtp_head=False, projector=False, stall_s=1.0)
    with pytest.raises(DownloadError, match=r"stalled \(no data for 1 s") as err:
        t.run()
    assert "kept: resume to continue" in str(err.value)
    assert t.items[0].partial.stat().st_size == size // 3
    assert not t.items[0].final.exists()


def test_a_file_that_changes_while_downloading_is_not_kept(fake_hub) -> None:
    path = "tiny-Q4_K_M.gguf"
    size = fake_hub.repos[TINY].files[path].size
    new = real(tiny_gguf(pad_mib=2.0, seed=99))
    fake_hub.behaviour.change_at[sha(fake_hub, path)] = (size // 2, new, TINY)
    t = transfer(fake_hub, "Q4_K_M", mtp_head=False, projector=False)
    with pytest.raises(DownloadError, match="does not match the Hub's SHA-256"):
        t.run()
    assert not t.items[0].partial.exists() and not t.items[0].final.exists()


@pytest.mark.parametrize("where", ["models folder", "cache"])
def test_a_partial_of_an_older_version_is_dropped_when_the_file_changed_on_the_hub(fake_hub, tmp_path, where) -> None:
    path = "tiny-Q4_K_M.gguf"
    folder = tmp_path / "models" if where == "models folder" else None
    t = transfer(fake_hub, "Q4_K_M", folder=folder, mtp_head=False, projector=False)
    err = _cancel_at(fake_hub, t, 300_000, sha(fake_hub, path))
    assert isinstance(err, DownloadCancelled)
    old_partial = t.items[0].partial
    assert old_partial.exists()
    fake_hub.repos[TINY].files[path] = real(tiny_gguf(pad_mib=2.0, seed=98))
    fake_hub.repos[TINY].commit = "f" * 40
    fake_hub.release.clear()
    notes: list[str] = []
    placed = transfer(fake_hub, "Q4_K_M", folder=folder, mtp_head=False, projector=False, note=notes.append).run()
    assert not old_partial.exists() and any("changed on the Hub since its download began" in n for n in notes)
    assert placed[0].read_bytes() == fake_hub.repos[TINY].files[path].head
    assert not list(tmp_path.rglob(f"*{PARTIAL_SUFFIX}"))


def test_a_server_whose_sizes_lie_keeps_nothing(fake_hub) -> None:
    path = "tiny-Q8_0.gguf"
    fake_hub.behaviour.lie_total[sha(fake_hub, path)] = fake_hub.repos[TINY].files[path].size * 3
    t = transfer(fake_hub, "Q8_0", mtp_head=False, projector=False)
    with pytest.raises(DownloadError, match="sizes cannot be trusted"):
        t.run()
    assert not t.items[0].partial.exists() and not t.items[0].final.exists()


def test_not_enough_disk_is_said_before_the_first_byte(fake_hub) -> None:
    huge = FakeFile(tiny_gguf(seed=31), 1 << 52)  # 4 PiB: more than any disk this runs on
    fake_hub.repos["x/Huge-GGUF"] = FakeRepo({"huge-Q8_0.gguf": huge}, commit="9" * 40)
    c = client(fake_hub)
    report = judge_repo(c, "x/Huge-GGUF", HW)
    fake_hub.reset_counts()
    t = Transfer(c, "x/Huge-GGUF", report.listing.commit,
                 plan_items("x/Huge-GGUF", files_for(report, "Q8_0"), fake_hub.cache_dir, None))
    with pytest.raises(DownloadError, match=r"not enough disk space in .*: the download needs 4,503,600 GB more and .* is free"):
        t.run()
    assert fake_hub.total_served() == 0 and not fake_hub.ranges


@pytest.mark.parametrize("status,code,words", [(401, "GatedRepo", "gated"), (404, "EntryNotFound", "404"),
                                               (429, None, "rate-limiting"), (500, None, "500 server error")])
def test_download_errors_are_words(fake_hub, status, code, words) -> None:
    t = transfer(fake_hub, "Q4_K_M", mtp_head=False, projector=False)
    fake_hub.behaviour.fail[f"/{TINY}/resolve/"] = (status, code)
    with pytest.raises(DownloadError, match=words) as err:
        t.run()
    assert "\n" not in str(err.value)


def test_a_gated_download_with_a_token_sends_it_to_the_hub_only_and_stores_it_nowhere(fake_hub, monkeypatch,
                                                                                     isolated_home) -> None:
    from fake_hub import TOKEN

    fake_hub.repos[TINY].gated = "auto"
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    t = transfer(fake_hub, "Q4_K_M", folder=isolated_home / "models", mtp_head=False, projector=False)
    placed = t.run()
    assert placed[0].read_bytes() == fake_hub.repos[TINY].files["tiny-Q4_K_M.gguf"].head
    assert all(auth for _m, p, auth in fake_hub.requests if "/resolve/" in p)
    assert not any(auth for _m, p, auth in fake_hub.requests if p.startswith("/cdn/"))
    for f in [*isolated_home.rglob("*"), *Path(fake_hub.cache_dir).rglob("*")]:
        if f.is_file():
            assert TOKEN.encode() not in f.read_bytes(), f
