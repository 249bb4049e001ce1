"""Choosing llama.cpp's release asset from the recorded API answer, for the machines the README promises;
hostile answers (every JSON type in every field) give one clear line, never a traceback."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llama_launcher.core.host.gpus import Adapter, GpuInventory, NvidiaGpu
from llama_launcher.core.llama_server.probe import capabilities_from_help
from llama_launcher.core.llama_server.releases import (
    ASSET_TABLE,
    CUDA_LINES,
    CatalogError,
    NoAssetError,
    Platform,
    choose_download,
    choose_newest,
    parse_release_list,
    parse_releases,
    update_offer,
)

from release_server import recorded_answer

HELP = Path(__file__).parent / "fixtures" / "help"
WIN, WIN_ARM = Platform("windows", "x64"), Platform("windows", "arm64")
MAC_ARM, MAC_X64 = Platform("macos", "arm64"), Platform("macos", "x64")
LINUX, LINUX_ARM = Platform("linux", "x64"), Platform("linux", "arm64")
RTX4090 = NvidiaGpu("NVIDIA GeForce RTX 4090", (8, 9), 24564)
GTX1080 = NvidiaGpu("NVIDIA GeForce GTX 1080", (6, 1), 8192)
GH200 = NvidiaGpu("NVIDIA GH200 480GB", (9, 0), 97871)
RADEON = Adapter("AMD", "AMD Radeon RX 7900 XTX", True, 24560)
ADRENO = Adapter("Qualcomm", "Qualcomm(R) Adreno(TM) X1-85 GPU", False, 0)
B = "llama-b11434-bin"


def release():
    return parse_releases(recorded_answer())


def names(choice) -> list[str]:
    return [a.name for a in choice.assets]


def nvidia(*gpus: NvidiaGpu, cuda: tuple[int, int] | None, driver: str = "581.42",
           vulkan: bool = True) -> GpuInventory:
    return GpuInventory(nvidia=list(gpus), cuda_driver=cuda, driver_version=driver, vulkan_loader=vulkan)


def test_pre_releases_are_read_since_every_build_is_one() -> None:
    # release-publish.yml creates each bNNNN release with prerelease: true (the fixture says so too)
    answer = recorded_answer()
    assert [r["prerelease"] for r in answer if r["tag_name"].startswith("b")] == [True, True]
    rel = release()
    assert rel.tag == "b11434" and rel.build == 11434 and len(rel.assets) == 36
    assert [r.tag for r in parse_release_list(answer)] == ["b11434", "b11433"]  # newest first, pointer skipped


def test_drafts_and_releases_without_binaries_are_skipped_with_one_clear_line() -> None:
    with pytest.raises(CatalogError, match="holds no llama.cpp build"):
        parse_releases(recorded_answer()[:1])  # only the v0.4.1 pointer release
    with pytest.raises(CatalogError, match="GitHub answered: API rate limit exceeded"):
        parse_releases({"message": "API rate limit exceeded for 203.0.113.7.", "documentation_url": "x"})
    drafts = copy.deepcopy(recorded_answer())
    for r in drafts:
        r["draft"] = True
    with pytest.raises(CatalogError):
        parse_releases(drafts)


# The machines the README promises, with the asset names chosen for each.
MACHINES = [
    ("Windows + RTX 4090, driver for CUDA 13.4", WIN, nvidia(RTX4090, cuda=(13, 4)), "cuda",
     [f"{B}-win-cuda-13.4-x64.zip", "cudart-llama-bin-win-cuda-13.4-x64.zip"], "NVIDIA GeForce RTX 4090 (CUDA 13.4)"),
    ("Windows + RTX 4090, driver only for CUDA 12.4", WIN, nvidia(RTX4090, cuda=(12, 4), driver="551.61"), "cuda",
     [f"{B}-win-cuda-12.4-x64.zip", "cudart-llama-bin-win-cuda-12.4-x64.zip"], "NVIDIA GeForce RTX 4090 (CUDA 12.4)"),
    ("Windows + RTX 4090, driver for CUDA 13.0 (older than the 13.4 build)", WIN, nvidia(RTX4090, cuda=(13, 0)), "cuda",
     [f"{B}-win-cuda-12.4-x64.zip", "cudart-llama-bin-win-cuda-12.4-x64.zip"], "NVIDIA GeForce RTX 4090 (CUDA 12.4)"),
    ("Windows + GTX 1080 (Pascal: CUDA 13 dropped it)", WIN, nvidia(GTX1080, cuda=(13, 4)), "cuda",
     [f"{B}-win-cuda-12.4-x64.zip", "cudart-llama-bin-win-cuda-12.4-x64.zip"], "NVIDIA GeForce GTX 1080 (CUDA 12.4)"),
    ("Windows + RTX 4090, driver too old for any CUDA build", WIN, nvidia(RTX4090, cuda=(12, 2), driver="537.58"),
     "vulkan", [f"{B}-win-vulkan-x64.zip"], "NVIDIA GeForce RTX 4090 (Vulkan)"),
    ("Windows + Radeon", WIN, GpuInventory(adapters=[RADEON], vulkan_loader=True), "vulkan",
     [f"{B}-win-vulkan-x64.zip"], "AMD Radeon RX 7900 XTX (Vulkan)"),
    ("Windows, no GPU", WIN, GpuInventory(), "cpu", [f"{B}-win-cpu-x64.zip"], "the CPU (Windows x64)"),
    ("Windows arm64", WIN_ARM, GpuInventory(), "cpu", [f"{B}-win-cpu-arm64.zip"], "the CPU (Windows arm64)"),
    ("Windows arm64 + Adreno with a Vulkan driver", WIN_ARM, GpuInventory(adapters=[ADRENO], vulkan_loader=True),
     "vulkan", [f"{B}-win-vulkan-arm64.zip"], "your GPU (Vulkan)"),
    ("Mac arm64", MAC_ARM, GpuInventory(), "metal", [f"{B}-macos-arm64.tar.gz"], "Apple Silicon (Metal)"),
    ("Mac x64", MAC_X64, GpuInventory(), "cpu", [f"{B}-macos-x64.tar.gz"], "the CPU (macOS x64)"),
    ("Linux + RTX 4090, driver for CUDA 13.4", LINUX, nvidia(RTX4090, cuda=(13, 4)), "cuda",
     [f"{B}-ubuntu-cuda-13.4-x64.tar.gz", f"cudart-{B}-ubuntu-cuda-13.4-x64.tar.gz"],
     "NVIDIA GeForce RTX 4090 (CUDA 13.4)"),
    ("Linux + RTX 4090, driver for CUDA 12.8", LINUX, nvidia(RTX4090, cuda=(12, 8), driver="570.86.10"), "cuda",
     [f"{B}-ubuntu-cuda-12.8-x64.tar.gz", f"cudart-{B}-ubuntu-cuda-12.8-x64.tar.gz"],
     "NVIDIA GeForce RTX 4090 (CUDA 12.8)"),
    ("Linux + RTX 4090, driver only for CUDA 12.4", LINUX, nvidia(RTX4090, cuda=(12, 4), driver="550.54.14"),
     "vulkan", [f"{B}-ubuntu-vulkan-x64.tar.gz"], "NVIDIA GeForce RTX 4090 (Vulkan)"),
    ("Linux arm64 + GH200", LINUX_ARM, nvidia(GH200, cuda=(13, 4), driver="580.95.05"), "cuda",
     [f"{B}-ubuntu-cuda-13.4-arm64.tar.gz", f"cudart-{B}-ubuntu-cuda-13.4-arm64.tar.gz"],
     "NVIDIA GH200 480GB (CUDA 13.4)"),
    ("Linux CPU", LINUX, GpuInventory(), "cpu", [f"{B}-ubuntu-x64.tar.gz"], "the CPU (Linux x64)"),
    ("Linux arm64 CPU", LINUX_ARM, GpuInventory(), "cpu", [f"{B}-ubuntu-arm64.tar.gz"], "the CPU (Linux arm64)"),
]


@pytest.mark.parametrize("plat,inv,backend,assets,target", [m[1:] for m in MACHINES], ids=[m[0] for m in MACHINES])
def test_the_asset_for_each_machine(plat, inv, backend, assets, target) -> None:
    choice = choose_download(release(), plat, inv)
    assert (choice.backend, names(choice), choice.target) == (backend, assets, target)
    assert choice.button_text() == f"Download llama.cpp b11434 for {target}"
    assert choice.asset_text().startswith(" + ".join(assets) + " (")
    described = choice.to_dict()
    assert [a["name"] for a in described["assets"]] == assets and all(a["role"] for a in described["assets"])
    assert described["reason"] and described["needs"]


def test_each_cuda_line_says_which_driver_it_needs() -> None:
    assert CUDA_LINES[12].min_driver == "525" and CUDA_LINES[13].min_driver == "580"
    assert CUDA_LINES[13].min_compute == (7, 5)
    choice = choose_download(release(), WIN, nvidia(RTX4090, cuda=(13, 4)))
    assert "NVIDIA driver 581.42 supports CUDA 13.4" in choice.reason
    assert choice.to_dict()["needs"] == "an NVIDIA GPU (CUDA) and an NVIDIA driver for CUDA 13.4 or newer (R580 or later)"
    old = choose_download(release(), WIN, nvidia(RTX4090, cuda=(12, 2), driver="537.58"))
    assert any("the NVIDIA driver 537.58 supports CUDA 12.2" in n and "update the NVIDIA driver" in n and
               "CUDA 12.4" in n for n in old.notes), old.notes


def test_every_row_of_the_table_serves_an_asset_of_the_fixture() -> None:
    published = {a.name for a in release().assets}
    for row in ASSET_TABLE:
        for arch in row.arches:
            hits = [n for n in published if row.matches(release().tag, arch, n)]
            assert hits, (row, arch)


def test_radeon_gets_vulkan_with_the_rocm_build_named_and_rocm_when_asked() -> None:
    choice = choose_download(release(), WIN, GpuInventory(adapters=[RADEON], vulkan_loader=True))
    assert any("--backend rocm" in n and "win-rocm-10.0-x64.zip" in n for n in choice.notes)
    assert names(choose_download(release(), WIN, GpuInventory(adapters=[RADEON]), "rocm")) == \
        [f"{B}-win-rocm-10.0-x64.zip"]
    assert names(choose_download(release(), LINUX, GpuInventory(), "rocm")) == [f"{B}-ubuntu-rocm-10.0-x64.tar.gz"]


def test_the_button_names_this_cpu() -> None:
    choice = choose_download(release(), LINUX, GpuInventory(), cpu="Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.0GHz")
    assert choice.button_text() == "Download llama.cpp b11434 for Intel Xeon Platinum 8480+ (CPU)"


def test_reasons_and_notes_say_why() -> None:
    old_driver = choose_download(release(), LINUX, nvidia(RTX4090, cuda=(12, 4), driver="550.54.14"))
    assert any("update the NVIDIA driver" in n and "CUDA 12.8" in n for n in old_driver.notes)
    no_loader = choose_download(release(), LINUX, nvidia(RTX4090, cuda=(12, 4), vulkan=False))
    assert no_loader.backend == "cpu" and "no Vulkan loader" in no_loader.reason


def test_a_cuda_build_without_its_runtime_archive_is_never_offered() -> None:
    answer = copy.deepcopy(recorded_answer())
    answer[1]["assets"] = [a for a in answer[1]["assets"] if not a["name"].startswith("cudart-")]
    answer = answer[:2]  # b11434 only
    assert choose_download(parse_releases(answer), WIN, nvidia(RTX4090, cuda=(13, 4))).backend == "vulkan"
    assert choose_download(parse_releases(answer), LINUX, nvidia(RTX4090, cuda=(13, 4))).backend == "vulkan"


def test_the_newest_release_with_the_best_asset_for_this_machine_wins() -> None:
    # a release still uploading (the workflow creates it, then uploads one archive after the other)
    answer = copy.deepcopy(recorded_answer())
    newer = copy.deepcopy(answer[1])
    newer["tag_name"] = newer["name"] = "b11435"
    for a in newer["assets"]:
        a["name"] = a["name"].replace("b11434", "b11435")
    newer["assets"] = [a for a in newer["assets"] if "cuda" not in a["name"]]
    answer.insert(1, newer)
    releases = parse_release_list(answer)
    assert [r.tag for r in releases] == ["b11435", "b11434", "b11433"]
    cuda = choose_newest(releases, WIN, nvidia(RTX4090, cuda=(13, 4)))
    assert (cuda.release.tag, cuda.backend) == ("b11434", "cuda")
    assert any("b11435 is newer" in n for n in cuda.notes)
    assert choose_newest(releases, WIN, GpuInventory()).release.tag == "b11435"  # its CPU build is there


def test_matching_is_exact_not_a_substring() -> None:
    # "ubuntu-x64" is inside "ubuntu-openvino-2026.4.1-x64" and "ubuntu-rocm-10.0-x64"; without the plain
    # CPU asset, nothing else may be taken for it
    answer = copy.deepcopy(recorded_answer())[:2]
    answer[1]["assets"] = [a for a in answer[1]["assets"] if a["name"] != f"{B}-ubuntu-x64.tar.gz"]
    with pytest.raises(NoAssetError, match="llama.cpp b11434 has no build for Linux x64"):
        choose_download(parse_releases(answer), LINUX, GpuInventory())


def test_older_zip_releases_still_work() -> None:
    old = [{"tag_name": "b7000", "draft": False, "prerelease": False, "assets": [
        {"name": "llama-b7000-bin-ubuntu-x64.zip", "browser_download_url": "https://x/u.zip", "size": 10,
         "state": "uploaded", "digest": None}]}]
    choice = choose_download(parse_releases(old), LINUX, GpuInventory())
    assert names(choice) == ["llama-b7000-bin-ubuntu-x64.zip"] and choice.assets[0].sha256 is None
    assert choice.assets[0].digest_problem is None  # no digest listed: an older answer, not a bad one


@pytest.mark.parametrize("plat,backend,message", [
    (Platform("linux", "riscv64"), None, "has no build for Linux riscv64: build one from source"),
    (LINUX, "metal", "Metal exists only on macOS"),
    (WIN, "metal", "Metal exists only on macOS"),
    (MAC_X64, "metal", "llama.cpp's macOS x64 release has no metal backend"),
    (MAC_ARM, "cuda", "llama.cpp's macOS arm64 release has no cuda backend"),
    (WIN, "cuda", "no CUDA build of llama.cpp b11434 fits this machine"),
    (LINUX, "cuda", "no CUDA build of llama.cpp b11434 fits this machine"),
    (WIN_ARM, "rocm", "llama.cpp's Windows arm64 release has no rocm backend"),
])
def test_no_asset_is_one_clear_line(plat, backend, message) -> None:
    inv = nvidia(RTX4090, cuda=(11, 8)) if backend == "cuda" and plat.os != "macos" else GpuInventory()
    with pytest.raises(NoAssetError) as err:
        choose_download(release(), plat, inv, backend)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_asking_for_a_backend_overrides_the_machine() -> None:
    assert names(choose_download(release(), WIN, GpuInventory(), "cuda"))[0] == f"{B}-win-cuda-13.4-x64.zip"
    assert names(choose_download(release(), WIN, nvidia(RTX4090, cuda=(12, 8)), "cpu")) == [f"{B}-win-cpu-x64.zip"]
    assert choose_download(release(), LINUX, GpuInventory(), "vulkan").backend == "vulkan"
    assert names(choose_download(release(), LINUX, GpuInventory(), "cuda")) == \
        [f"{B}-ubuntu-cuda-13.4-x64.tar.gz", f"cudart-{B}-ubuntu-cuda-13.4-x64.tar.gz"]


def caps(era: str):
    return capabilities_from_help("/x/llama-server", (HELP / f"{era}.help.txt").read_text(),
                                  (HELP / f"{era}.version.txt").read_text())


def test_the_newer_build_notice_says_what_the_user_would_gain() -> None:
    choice = choose_download(release(), LINUX, GpuInventory())
    assert update_offer(caps("b9093-post-rename"), choice) == \
        "A newer llama.cpp is available: b11434. It adds draft-mtp (your b9093 lacks it)."
    assert update_offer(caps("b5142-no-spec"), choice) == (
        "A newer llama.cpp is available: b11434. It adds speculative decoding (--spec-type), ngram-mod and "
        "draft-mtp (your b5142 lacks them).")
    current = caps("b11434-current")
    assert update_offer(current, choice) is None  # same build, nothing to offer
    gpu_choice = choose_download(release(), WIN, nvidia(RTX4090, cuda=(12, 8)))
    assert update_offer(current, gpu_choice, gpu_idle=True) == (
        "This llama-server does not use your GPU; the b11434 release for NVIDIA GeForce RTX 4090 (CUDA 12.4) does.")


# --- hostile answers ----------------------------------------------------------------------------

JSON_VALUES = [None, True, False, 0, -1, 7, 2**70, 1.5, -0.0, math.inf, math.nan, "", "x", "b11434\n",
               "../../etc/passwd", "sha256:zz", [], [None], [1, "a"], {}, {"a": 1}, {"name": []}]
RELEASE_FIELDS = ["tag_name", "draft", "prerelease", "assets", "published_at", "message", "name"]
ASSET_FIELDS = ["name", "browser_download_url", "size", "state", "digest"]


def _all_choices(data) -> None:
    """What a caller does with an answer; only CatalogError may come out."""
    releases = parse_release_list(data)
    for plat in (WIN, LINUX, MAC_ARM):
        for inv in (GpuInventory(), nvidia(RTX4090, cuda=(13, 4))):
            try:
                choice = choose_newest(releases, plat, inv)
            except NoAssetError:
                continue
            json.dumps(choice.to_dict())  # printable as --json
            assert all(isinstance(a.name, str) and "/" not in a.name and a.size > 0 for a in choice.assets)


@pytest.mark.parametrize("value", JSON_VALUES, ids=repr)
@pytest.mark.parametrize("key", RELEASE_FIELDS)
def test_every_json_type_in_every_release_field_is_one_clear_line(key: str, value) -> None:
    answer = copy.deepcopy(recorded_answer())
    answer[1][key] = value
    try:
        _all_choices(answer)
    except CatalogError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize("value", JSON_VALUES, ids=repr)
@pytest.mark.parametrize("key", ASSET_FIELDS)
def test_every_json_type_in_every_asset_field_is_one_clear_line(key: str, value) -> None:
    answer = copy.deepcopy(recorded_answer())[:2]
    for a in answer[1]["assets"]:
        a[key] = value
    try:
        _all_choices(answer)
    except CatalogError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize("data", JSON_VALUES, ids=repr)
def test_any_json_value_as_the_whole_answer_is_one_clear_line(data) -> None:
    try:
        _all_choices(data)
    except CatalogError as exc:
        assert "\n" not in str(exc)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(release_junk=st.dictionaries(st.sampled_from(RELEASE_FIELDS), JSON, max_size=4),
       asset_junk=st.dictionaries(st.sampled_from(ASSET_FIELDS), JSON, max_size=3))
def test_random_junk_in_any_field_is_one_clear_line(release_junk: dict, asset_junk: dict) -> None:
    answer = copy.deepcopy(recorded_answer())[:2]
    answer[1].update(release_junk)
    if isinstance(answer[1].get("assets"), list):
        for a in answer[1]["assets"]:
            if isinstance(a, dict):
                a.update(asset_junk)
    try:
        _all_choices(answer)
    except CatalogError as exc:
        assert "\n" not in str(exc)


def test_an_unreadable_digest_is_kept_as_a_problem_not_dropped() -> None:
    answer = copy.deepcopy(recorded_answer())[:2]
    for a in answer[1]["assets"]:
        a["digest"] = "md5:0000"
    asset = choose_download(parse_releases(answer), LINUX, GpuInventory()).assets[0]
    assert asset.sha256 is None and asset.digest_problem == "'md5:0000' is not a SHA-256 digest"
    for a in answer[1]["assets"]:
        a["digest"] = 5
    asset = choose_download(parse_releases(answer), LINUX, GpuInventory()).assets[0]
    assert asset.digest_problem == "the digest is a number, not text"
