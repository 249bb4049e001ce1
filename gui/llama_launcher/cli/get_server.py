"""``llama-launcher get-server``: the headless twin of the llama-server tab's offers.

Without options it does what the window offers first: nothing when a llama-server is already
found; otherwise it downloads llama.cpp's official release build for this machine on Windows and
macOS, and builds one from source on Linux (the CPU it runs on gets a build made for it).
``--download`` and ``--build`` choose explicitly; ``--backend`` picks the GPU backend for either.
A build downloaded or built goes beside the others and becomes the one in use; ``--list`` shows the
installed builds, ``--use bNNNN`` switches back to another, ``--remove bNNNN`` deletes one.
``demo-model`` assembles the demo model the tests and a first start use.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from llama_launcher.cli.output import RunError, UsageError, say, table
from llama_launcher.core.host import gpus as gpu_inventory
from llama_launcher.core.host.hardware import cpu_name
from llama_launcher.core.llama_server import build_record, provisioning
from llama_launcher.core.llama_server.build_backend import (
    BackendError,
    choose_build_backend,
    find_build_tools,
)
from llama_launcher.core.llama_server.discovery import EXE, choose_build, find_server
from llama_launcher.core.llama_server.download import install, release_dir
from llama_launcher.core.llama_server.fetch import (
    RELEASES_URL_ENV,
    DownloadError,
    fetch_release,
    fetch_releases,
    releases_url,
)
from llama_launcher.core.llama_server.installed import BuildChoiceError, list_builds, remove_build, use_build
from llama_launcher.core.llama_server.provisioning import ProvisionError, ensure_demo_model, lacks_fit_tool
from llama_launcher.core.llama_server.releases import CatalogError, NoAssetError, Platform, choose_newest


def _say(args: argparse.Namespace, text: str) -> None:
    say(text, file=sys.stderr if args.json else sys.stdout, flush=True)


def _progress(args: argparse.Namespace):
    def progress(msg: str, frac: float | None) -> None:
        pct = f"{frac * 100:5.1f}% " if frac is not None else "       "
        _say(args, f"{pct}{msg}")
    return progress


def _download(args: argparse.Namespace) -> dict[str, Any]:
    if args.jobs is not None:
        raise UsageError("--jobs applies to --build only")
    url = releases_url()
    if url is None:
        raise UsageError(f"checking llama.cpp's releases is switched off ({RELEASES_URL_ENV}=off)")
    _say(args, f"asking {url.split('?')[0]} for llama.cpp's {args.release or 'newest'} release")
    try:
        releases = [fetch_release(url, args.release)] if args.release else fetch_releases(url)
    except DownloadError as exc:
        raise RunError(str(exc)) from exc
    try:
        choice = choose_newest(releases, Platform.current(), gpu_inventory.detect(), args.backend, cpu_name())
    except NoAssetError as exc:
        raise (UsageError if args.backend else RunError)(str(exc)) from exc
    except CatalogError as exc:
        raise RunError(str(exc)) from exc
    release = choice.release
    _say(args, f"backend: {choice.backend} ({choice.reason})")
    _say(args, f"asset: {choice.asset_text()}")
    _say(args, f"needs: {choice.needs}")
    for note in choice.notes:
        _say(args, f"note: {note}")
    if args.dry_run:
        return {"action": "would download", **choice.to_dict()}
    folder = release_dir(choice.build)
    info = build_record.read(folder)
    target = folder / EXE
    if (not args.force and info and info.get("release") == release.tag and info.get("backend") == choice.backend
            and provisioning.runs(target)):
        _say(args, f"llama.cpp {release.tag} ({choice.backend}) is already installed: {target}")
        return {"action": "already installed", "path": str(target), "release": release.tag, "build": choice.build,
                "backend": choice.backend, "source": build_record.RELEASE_SOURCE}
    try:
        result = install(choice, _progress(args))
    except DownloadError as exc:
        raise RunError(str(exc)) from exc
    _now_in_use(args, result.path)
    return {"action": "downloaded", **result.to_dict(), "assets": [a.name for a in choice.assets]}


def _now_in_use(args: argparse.Namespace, exe: Path) -> None:
    """A build just installed becomes the one in use; the previous one stays (``--use`` goes back)."""
    before = find_server()
    try:
        choose_build(exe.parent.name)
    except OSError as exc:
        _say(args, f"note: the new build could not be recorded as the one in use: {exc.strerror or exc}")
        return
    same_cache = before is not None and Path(before.path).parent.parent == exe.parent.parent
    if before is not None and same_cache and os.path.realpath(before.path) != os.path.realpath(exe):
        _say(args, f"note: {Path(before.path).parent.name} stays installed; to go back: "
                   f"llama-launcher get-server --use {Path(before.path).parent.name}")


def _list(args: argparse.Namespace) -> int:
    builds = list_builds()
    if args.json:
        print(json.dumps({"builds": [b.to_dict() for b in builds]}, indent=2))
        return 0
    if not builds:
        say("no llama-server builds are installed in the launcher's cache; 'llama-launcher get-server' gets one")
        return 0
    rows = [["*" if b.in_use else "", b.folder, str(b.build or "?"), b.source, b.abilities(), b.installed_at]
            for b in builds]
    print(table(rows, ["", "build", "number", "source", "can do", "installed"]))
    if not any(b.in_use for b in builds):
        found = find_server()
        if found is not None:
            say(f"in use: {found.path} ({found.source}), not one of these")
    return 0


def _use(args: argparse.Namespace) -> int:
    try:
        item = use_build(args.use)
    except BuildChoiceError as exc:
        raise UsageError(str(exc)) from exc
    first = find_server()
    if args.json:
        print(json.dumps({"action": "use", **item.to_dict(),
                          "found_first": first.to_dict() if first and first.path != item.path else None}, indent=2))
    else:
        say(f"now using {item.folder}: {item.path} ({item.source}; {item.abilities()})")
    if first is not None and os.path.realpath(first.path) != os.path.realpath(item.path):
        _say(args, f"note: {first.path} ({first.source}) is still found first; unset it to use {item.folder}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    try:
        folder = remove_build(args.remove)
    except BuildChoiceError as exc:
        raise UsageError(str(exc)) from exc
    if args.json:
        print(json.dumps({"action": "removed", "folder": str(folder)}, indent=2))
    else:
        say(f"removed {folder}")
    return 0


def _build(args: argparse.Namespace) -> dict[str, Any]:
    if args.release:
        raise UsageError("--release applies to --download only (a source build is always "
                         f"b{provisioning.BUILD_NUMBER})")
    try:
        backend = choose_build_backend(Platform.current().os, find_build_tools(), gpu_inventory.detect().nvidia,
                                       args.backend)
    except BackendError as exc:
        raise (UsageError if args.backend else RunError)(str(exc)) from exc
    _say(args, f"backend: {backend.backend} ({backend.reason})")
    if args.dry_run:
        return {"action": "would build", "build": provisioning.BUILD_NUMBER, "backend": backend.backend,
                "reason": backend.reason, "cmake_flags": provisioning.CMAKE_FLAGS + backend.cmake_flags}
    try:
        path = provisioning.build_server(_progress(args), force=args.force, jobs=args.jobs, backend=backend)
    except provisioning.ProvisionError as exc:
        raise RunError(str(exc)) from exc
    # build_server reuses a cached build only when it has this backend, and records it for a new one
    _now_in_use(args, path)
    return {"action": "built", "path": str(path), "build": provisioning.BUILD_NUMBER,
            "backend": backend.backend, "source": build_record.SOURCE_BUILD, "reason": backend.reason}


def cmd_get_server(args: argparse.Namespace) -> int:
    if args.list or args.use or args.remove:
        if args.dry_run or args.force or args.backend or args.release or args.jobs is not None:
            raise UsageError("--list, --use and --remove take no other option than --json")
        return _list(args) if args.list else _use(args) if args.use else _remove(args)
    mode = "download" if args.download else "build" if args.build else None
    if mode is None:
        if not args.force and not args.dry_run:
            found = find_server()
            if found is not None and lacks_fit_tool(found.path):
                mode = "build"  # the launcher's own build, made before llama-fit-params came with it: add the tool
            elif found is not None:
                if args.json:
                    print(json.dumps({"action": "found", "path": found.path, "source": found.source}, indent=2))
                else:
                    say(f"llama-server found: {found.path} ({found.source}); use --download or --build to get "
                        "another one anyway")
                return 0
        mode = mode or ("download" if Platform.current().os in ("windows", "macos") else "build")
    result = _download(args) if mode == "download" else _build(args)
    first = find_server() if result.get("path") else None
    if first is not None and os.path.realpath(first.path) != os.path.realpath(result["path"]):
        # discovery prefers PATH, Homebrew and the like to the launcher's own folder: say how to pick it
        result["found_first"] = {"path": first.path, "source": first.source}
        _say(args, f"note: {first.path} ({first.source}) is found first; to use the new one pass --binary "
                   f"{result['path']}, set LLAMA_SERVER to it, or choose it on the window's llama-server tab")
    if args.json:
        print(json.dumps(result, indent=2))
    elif result.get("path"):
        say(f"llama-server ready: {result['path']} ({result['backend']})")
    return 0


def cmd_demo_model(args: argparse.Namespace) -> int:
    try:
        path = ensure_demo_model(lambda m, f: say(m, flush=True))
    except ProvisionError as exc:
        raise RunError(str(exc)) from exc
    say(path)
    return 0
