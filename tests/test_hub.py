"""Search, a repository's quants, headers read remotely and the fit verdicts, against the fake Hub
(tests/fake_hub.py) through huggingface_hub's own requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from llama_launcher.core.host.hardware import Hardware
from llama_launcher.core.hub.client import HubClient, HubError, token_source
from llama_launcher.core.hub.remote_header import ByteCounter
from llama_launcher.core.hub.repo_files import group_repo, quant_of
from llama_launcher.core.hub.repo_report import files_for, judge_repo
from llama_launcher.core.llama_server.probe import capabilities_from_help

from fake_hub import TOKEN, FakeFile, FakeRepo, big_header, big_repo, real, tiny_gguf

HELP_DIR = Path(__file__).parent / "fixtures" / "help"
BIG, TINY = "big/Big-14B-GGUF", "tiny/Tiny-GGUF"

# Machines as `llama-launcher hardware --json` describes them (Hardware.from_dict reads that shape).
GPU_8GB = {"cpu": "x86-64", "ram_total_mib": 32768, "ram_available_mib": 30000, "apple_silicon": False,
           "gpus": [{"name": "NVIDIA GeForce RTX 4060", "backend": "CUDA", "memory_total_mib": 8188,
                     "memory_free_mib": 7800}]}
GPU_24GB = {"cpu": "x86-64", "ram_total_mib": 65536, "ram_available_mib": 60000, "apple_silicon": False,
            "gpus": [{"name": "NVIDIA GeForce RTX 4090", "backend": "CUDA", "memory_total_mib": 24564,
                      "memory_free_mib": 24000}]}
MAC_16GB = {"cpu": "Apple M2", "ram_total_mib": 16384, "ram_available_mib": 12000, "apple_silicon": True,
            "gpus": [{"name": "Apple M2 GPU", "backend": "Metal", "memory_total_mib": 16384, "memory_free_mib": 12000}]}


def caps():
    return capabilities_from_help("/bin/llama-server", (HELP_DIR / "b11434-current.help.txt").read_text(),
                                  (HELP_DIR / "b11434-current.version.txt").read_text())


def client(hub) -> HubClient:
    return HubClient(endpoint=hub.url, cache_dir=hub.cache_dir, timeout=10)


def test_search_lists_gguf_repos_with_downloads_likes_date_and_gating(fake_hub) -> None:
    fake_hub.repos[BIG].gated = "manual"
    hits = client(fake_hub).search("gguf")
    assert [h.repo_id for h in hits] == [BIG, TINY]  # most downloaded first
    assert (hits[0].downloads, hits[0].likes, hits[0].updated, hits[0].gated) == (90000, 400, "2026-10-01", "manual")
    assert hits[1].gated is None
    assert client(fake_hub).search("no-such-model") == []


def test_a_repo_lists_each_quant_once_with_split_parts_heads_and_projectors_apart(fake_hub) -> None:
    listing = client(fake_hub).listing(TINY)
    assert listing.commit == "a" * 40
    models = group_repo(listing.files)
    assert [q.quant for q in models.quants] == ["Q4_K_M", "Q6_K", "Q8_0", "F16"]  # smallest first
    q6 = models.find("Q6_K")
    assert q6 is not None and [f.path for f in q6.files] == [
        "Q6_K/tiny-Q6_K-00001-of-00002.gguf", "Q6_K/tiny-Q6_K-00002-of-00002.gguf"]
    assert q6.size == sum(fake_hub.repos[TINY].files[f.path].size for f in q6.files)
    assert all(f.sha256 == fake_hub.repos[TINY].files[f.path].sha256 for f in listing.files if f.path.endswith(".gguf"))
    assert [h.name for h in models.mtp_heads] == ["mtp-tiny-Q8_0.gguf"]
    assert [p.name for p in models.projectors] == ["mmproj-tiny-F16.gguf"]


@pytest.mark.parametrize("name,quant", [("Qwen3-14B-Q4_K_M.gguf", "Q4_K_M"), ("model-UD-Q4_K_XL.gguf", "UD-Q4_K_XL"),
                                        ("Q6_K/x-00001-of-00002.gguf", "Q6_K"), ("gemma-3-27b-it-IQ4_XS.gguf", "IQ4_XS"),
                                        ("m.BF16.gguf", "BF16"), ("Q8_0/model-00001-of-00003.gguf", "Q8_0"),
                                        ("plain.gguf", "")])
def test_the_quant_is_read_from_the_file_name_else_its_folder(name: str, quant: str) -> None:
    assert quant_of(name) == quant


@pytest.mark.parametrize("machine,best,places", [
    (GPU_8GB, "Q2_K", {"Q2_K": "gpu", "Q4_K_M": "partial", "Q6_K": "partial", "Q8_0": "partial"}),
    (GPU_24GB, "Q8_0", {"Q2_K": "gpu", "Q4_K_M": "gpu", "Q6_K": "gpu", "Q8_0": "gpu"}),
    (MAC_16GB, "Q4_K_M", {"Q2_K": "memory", "Q4_K_M": "memory", "Q6_K": "no", "Q8_0": "no"}),
], ids=["8GB-GPU", "24GB-GPU", "16GB-Mac"])
def test_fit_verdicts_and_the_recommended_quant_for_described_machines(fake_hub, machine, best, places) -> None:
    hw = Hardware.from_dict(machine)
    report = judge_repo(client(fake_hub), BIG, hw, caps())
    assert {q.group.quant: q.verdict.place for q in report.quants} == places
    assert report.recommended == best
    by = {q.group.quant: q for q in report.quants}
    assert by["Q6_K"].info.parameters == by["Q2_K"].info.parameters  # both parts of the split quant were read
    assert "largest quant that fits" in report.why and best in report.why
    if machine is GPU_8GB:
        assert "on the CPU" in by["Q8_0"].verdict.reason and "Q4_K_M, Q6_K, Q8_0 would not fit on the GPU" in report.why
    if machine is MAC_16GB:
        assert "even at 4,096 tokens" in by["Q8_0"].verdict.reason
    assert "mtp-Big-14B-Q8_0.gguf" in by[best].verdict.speculative


def test_the_verdict_is_at_the_context_asked_for(fake_hub) -> None:
    hw = Hardware.from_dict(GPU_8GB)
    auto = judge_repo(client(fake_hub), BIG, hw, caps())
    asked = judge_repo(client(fake_hub), BIG, hw, caps(), ctx=32768)
    q2_auto, q2_asked = auto.quants[0].verdict, asked.quants[0].verdict
    assert q2_auto.place == "gpu" and q2_auto.context < 32768
    assert q2_asked.context == 32768 and q2_asked.place == "partial"


def test_without_a_llama_server_the_estimate_says_speculation_is_not_counted(fake_hub) -> None:
    report = judge_repo(client(fake_hub), BIG, Hardware.from_dict(GPU_24GB), None)
    assert report.recommended == "Q8_0"
    assert any("leaves out speculative decoding" in n for n in report.quants[0].verdict.notes)


def test_deciding_reads_only_the_headers_never_whole_files(fake_hub) -> None:
    counter = ByteCounter()
    report = judge_repo(client(fake_hub), BIG, Hardware.from_dict(GPU_24GB), caps(), counter=counter)
    assert report.bytes_read == counter.total == fake_hub.total_served()
    assert counter.total < 10 * 1024 * 1024  # four quants (one split in two) of a 14B model, 4-14 GB each
    assert sum(f.size for f in fake_hub.repos[BIG].files.values()) > 1000 * counter.total


def test_with_a_large_vocabulary_one_header_is_read_whole_and_the_others_from_their_first_megabyte(fake_hub) -> None:
    fake_hub.repos["big/Qwen-size-GGUF"] = big_repo(vocab=151936)  # Qwen's vocabulary: ~4 MB per header
    header = len(fake_hub.repos["big/Qwen-size-GGUF"].files["Big-14B-Q8_0.gguf"].head)
    assert header > 3 * 1024 * 1024
    report = judge_repo(client(fake_hub), "big/Qwen-size-GGUF", Hardware.from_dict(GPU_24GB), caps())
    assert report.bytes_read < 10 * 1024 * 1024 < 4 * header  # read whole, four headers would be over 10 MB
    params = {q.group.quant: q.info.parameters for q in report.quants}
    assert len(set(params.values())) == 1 and params["Q8_0"] > 13e9
    assert {q.group.quant: q.info.quantization for q in report.quants} == {
        "Q2_K": "Q2_K", "Q4_K_M": "Q4_K_M", "Q6_K": "Q6_K", "Q8_0": "Q8_0"}  # each from its own header
    assert report.recommended == "Q8_0"


def test_a_quant_of_another_model_in_the_same_repo_is_read_whole(fake_hub) -> None:
    small, small_size = big_header("Q4_K_M", vocab=151936)
    other, other_size = big_header("Q8_0", vocab=151936, blocks=20)
    fake_hub.repos["x/Mixed-GGUF"] = FakeRepo({"a-Q4_K_M.gguf": FakeFile(small, small_size),
                                               "b-Q8_0.gguf": FakeFile(other, other_size)}, commit="7" * 40)
    report = judge_repo(client(fake_hub), "x/Mixed-GGUF", Hardware.from_dict(GPU_24GB), caps())
    by = {q.group.quant: q.info for q in report.quants}
    assert by["Q8_0"].block_count == 20 and by["Q8_0"].parameters < by["Q4_K_M"].parameters
    assert len(by["Q8_0"].block_parameters) == 20


def test_a_file_with_mtp_layers_says_so(fake_hub) -> None:
    head = tiny_gguf(arch="qwen3", pad_mib=0.3, nextn=1, seed=21)
    fake_hub.repos["x/MTP-GGUF"] = FakeRepo({"m-Q8_0.gguf": real(head)}, commit="c" * 40)
    report = judge_repo(client(fake_hub), "x/MTP-GGUF", Hardware.from_dict(GPU_24GB), caps())
    assert report.quants[0].verdict.speculative.startswith("MTP: the file has 1 MTP layer(s)")
    fake_hub.repos["x/Plain-GGUF"] = FakeRepo({"m-Q8_0.gguf": real(tiny_gguf(seed=22))}, commit="d" * 40)
    plain = judge_repo(client(fake_hub), "x/Plain-GGUF", Hardware.from_dict(GPU_24GB), caps())
    assert plain.quants[0].verdict.speculative.startswith("no MTP layers and no MTP head")


def test_a_download_brings_every_part_the_mtp_head_and_the_projector_unless_told_not_to(fake_hub) -> None:
    report = judge_repo(client(fake_hub), TINY, Hardware.from_dict(GPU_24GB), caps())
    files = files_for(report, "Q6_K")
    assert [(f.name, role) for f, role in files] == [
        ("tiny-Q6_K-00001-of-00002.gguf", "model"), ("tiny-Q6_K-00002-of-00002.gguf", "model"),
        ("mtp-tiny-Q8_0.gguf", "MTP head"), ("mmproj-tiny-F16.gguf", "projector")]
    assert [f.name for f, _ in files_for(report, "q8_0", mtp_head=False, projector=False)] == ["tiny-Q8_0.gguf"]
    with pytest.raises(HubError, match="no quant 'Q3_K_S'"):
        files_for(report, "Q3_K_S")


def test_a_repo_without_gguf_says_so(fake_hub) -> None:
    fake_hub.repos["x/safetensors-only"] = FakeRepo({"model.safetensors": real(b"\0" * 64),
                                                    "config.json": real(b"{}")})
    with pytest.raises(HubError, match="has no GGUF model to download"):
        judge_repo(client(fake_hub), "x/safetensors-only", Hardware.from_dict(GPU_24GB))


def test_a_header_that_claims_more_than_the_file_holds_is_one_line(fake_hub) -> None:
    head, _size = big_header("Q4_K_M")
    fake_hub.repos["x/Liar-GGUF"] = FakeRepo({"liar-Q4_K_M.gguf": FakeFile(head[: len(head) // 2], len(head) // 2)},
                                             commit="e" * 40)
    report = judge_repo(client(fake_hub), "x/Liar-GGUF", Hardware.from_dict(GPU_24GB), caps())
    v = report.quants[0]
    assert v.verdict.place == "unknown" and v.info.error and "truncated" in v.info.error
    assert "\n" not in v.info.error and report.recommended is None


@pytest.mark.parametrize("status,code,words", [
    (401, "RepoNotFound", "or it is private"), (404, "RepoNotFound", "no repository"),
    (429, None, "rate-limiting"), (500, None, "500 server error"), (403, None, "403 forbidden")])
def test_hub_errors_are_one_line_of_words(fake_hub, status, code, words) -> None:
    fake_hub.behaviour.fail[f"/api/models/{TINY}"] = (status, code)
    with pytest.raises(HubError) as err:
        client(fake_hub).listing(TINY)
    assert words in str(err.value) and "\n" not in str(err.value)
    if status == 429:
        assert "wait 30 s" in str(err.value)


def test_a_repo_that_does_not_exist(fake_hub) -> None:
    with pytest.raises(HubError, match="no repository nobody/nothing"):
        client(fake_hub).listing("nobody/nothing")


def test_a_gated_repo_gives_the_link_and_how_to_log_in(fake_hub, monkeypatch) -> None:
    fake_hub.repos[TINY].gated = "manual"
    with pytest.raises(HubError) as err:
        judge_repo(client(fake_hub), TINY, Hardware.from_dict(GPU_24GB), caps())
    text = str(err.value)
    assert f"{fake_hub.url}/{TINY}" in text and "hf auth login" in text and "HF_TOKEN" in text
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert token_source() == "the HF_TOKEN environment variable"
    report = judge_repo(client(fake_hub), TINY, Hardware.from_dict(GPU_24GB), caps())
    assert report.recommended is not None and TOKEN not in repr(report.to_dict())
    # the token went to the Hub, never to the file server on the other host
    assert any(auth for _m, p, auth in fake_hub.requests if "/resolve/" in p)
    assert not any(auth for _m, p, auth in fake_hub.requests if p.startswith("/cdn/"))


def test_offline_is_one_line_and_quick(fake_hub) -> None:
    url = fake_hub.url
    fake_hub.stop()
    c = HubClient(endpoint=url, timeout=5)
    for call in (lambda: c.search("qwen"), lambda: c.listing(TINY)):
        with pytest.raises(HubError) as err:
            call()
        assert "cannot reach 127.0.0.1" in str(err.value) and "models already on disk still work" in str(err.value)
