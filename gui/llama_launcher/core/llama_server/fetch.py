"""Talking to llama.cpp's release feed: which addresses may be asked, every redirect checked before it
is followed, the release list read within bounds, one archive streamed with its size and SHA-256 checked.

Only https is used, or plain http to this machine (a test server, a local mirror). A redirect is a
new request to an address the *server* chose, so each hop is checked before it is made: it must be
allowed on its own, and an https address may never hand over to plain http (a downgrade), loopback
or not. The answer is someone else's JSON: 16 MiB at most, nesting that would exhaust Python's
parser is one line, and ``releases.py`` checks every field.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import ipaddress
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from llama_launcher import __version__
from llama_launcher.core.llama_server.releases import RELEASES_API, CatalogError, Release, parse_release_list
from llama_launcher.core.state.cancel import Cancellable
from llama_launcher.core.state.errors import UserFacing
from llama_launcher.core.state.safe_text import safe_text

Progress = Callable[[str, "float | None"], None]  # (message, fraction 0..1 or None), as provisioning's

CHUNK = 256 * 1024
API_MAX_BYTES = 16 * 1024 * 1024
TIMEOUT_S = 30.0
MAX_REDIRECTS = 5
RELEASES_URL_ENV = "LLAMA_LAUNCHER_RELEASES_URL"  # another API answer (a mirror, a test server); "off": none


OFFLINE = "this computer seems to be offline"  # how a failed name lookup is said (offers.is_offline reads it)


class DownloadError(UserFacing):
    """The download or install failed; one line for the user. Nothing was installed."""


class DownloadCancelled(DownloadError):
    """The user cancelled; nothing was installed."""


def releases_url() -> str | None:
    """The release API to ask (None when the user or a test switched checking off)."""
    value = os.environ.get(RELEASES_URL_ENV)
    if value is None:
        return RELEASES_API
    return None if value.strip().lower() in ("", "off", "0", "none") else value.strip()


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _show(url: str) -> str:
    return safe_text(url, 300)


def check_url(url: str) -> None:
    """Only https, or http to this machine (a test server, a local mirror)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise DownloadError(f"refusing to download from {_show(url)}: it is not a valid address") from None
    if parts.scheme == "https" or (parts.scheme == "http" and _loopback(host)):
        return
    raise DownloadError(f"refusing to download from {_show(url)}: only https addresses are used")


def check_redirect(old: str, new: str) -> None:
    """A redirect from ``old`` to ``new`` may be followed only if ``new`` is allowed and stays on https."""
    try:
        check_url(new)
    except DownloadError:
        raise DownloadError(f"refusing the redirect from {_show(old)} to {_show(new)}: only https addresses "
                            "are used") from None
    if urllib.parse.urlsplit(old).scheme == "https" and urllib.parse.urlsplit(new).scheme != "https":
        raise DownloadError(f"refusing the redirect from {_show(old)} to {_show(new)}: it leaves https")


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Checks each hop before the request to it is made (urllib's default follows first)."""

    max_redirections = MAX_REDIRECTS

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: Any, newurl: str) -> urllib.request.Request | None:
        target = urllib.parse.urljoin(req.full_url, newurl)
        try:
            check_redirect(req.full_url, target)
        except DownloadError:
            fp.close()
            raise
        return super().redirect_request(req, fp, code, msg, headers, target)


_OPENER = urllib.request.build_opener(_CheckedRedirects)


def _net_error(exc: BaseException, url: str) -> DownloadError:
    host = urllib.parse.urlsplit(url).hostname or url
    if isinstance(exc, urllib.error.HTTPError):
        detail = ""
        try:
            body = json.loads(exc.read(64 * 1024).decode("utf-8", "replace"))
            detail = f": {safe_text(body['message'], 200)}" if isinstance(body, dict) and \
                isinstance(body.get("message"), str) else ""
        except (ValueError, OSError, KeyError, RecursionError):
            pass
        return DownloadError(f"{host} answered HTTP {exc.code} {safe_text(exc.reason, 80)}{detail} for {_show(url)}")
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        text = getattr(reason, "strerror", None) or str(reason)
        if isinstance(reason, socket.gaierror):  # no name lookup answered: offline, as a person would say it
            return DownloadError(f"{OFFLINE} ({host} could not be looked up: {text}); "
                                 "connect to the internet and check again")
        if isinstance(reason, ConnectionRefusedError):
            return DownloadError(f"cannot reach {host}: it refused the connection; check again later")
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return DownloadError(f"{host} did not answer within {TIMEOUT_S:.0f} s; check the network and try again")
        return DownloadError(f"cannot reach {host} ({text}); check the network connection")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return DownloadError(f"{host} did not answer within {TIMEOUT_S:.0f} s")
    return DownloadError(f"the connection to {host} failed: "
                         f"{exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}")


def open_url(url: str, accept: str, timeout: float = TIMEOUT_S) -> Any:
    """The response for ``url``, every hop checked (see the module docstring)."""
    check_url(url)
    req = urllib.request.Request(url, headers={"User-Agent": f"llama-launcher/{__version__}", "Accept": accept})
    try:
        return _OPENER.open(req, timeout=timeout)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _net_error(exc, url) from exc


def _read_answer(url: str, timeout: float) -> Any:
    with open_url(url, "application/vnd.github+json", timeout) as resp:
        try:
            raw = resp.read(API_MAX_BYTES + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise _net_error(exc, url) from exc
    if len(raw) > API_MAX_BYTES:
        raise DownloadError(f"the release list at {_show(url)} is larger than {API_MAX_BYTES // 2**20} MiB; refusing it")
    try:
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise DownloadError(f"the answer from {_show(url)} is nested too deeply to be a release list; "
                            "refusing it") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise DownloadError(f"the answer from {_show(url)} is not JSON") from exc


def fetch_releases(url: str | None = None, timeout: float = TIMEOUT_S) -> list[Release]:
    """Every usable llama.cpp build in the API answer at ``url``, newest first."""
    url = url or releases_url()
    if url is None:
        raise DownloadError(f"checking for llama.cpp releases is switched off ({RELEASES_URL_ENV}=off)")
    data = _read_answer(url, timeout)
    try:
        return parse_release_list(data)
    except CatalogError as exc:
        raise DownloadError(str(exc)) from exc


def fetch_release(url: str | None = None, tag: str | None = None, timeout: float = TIMEOUT_S) -> Release:
    """The newest llama.cpp build in the API answer at ``url`` (or the build ``tag``)."""
    url = url or releases_url()
    if url is None:
        raise DownloadError(f"checking for llama.cpp releases is switched off ({RELEASES_URL_ENV}=off)")
    if tag is None:
        return fetch_releases(url, timeout)[0]
    data = _read_answer(url, timeout)
    items = data if isinstance(data, list) else [data]
    wanted = [i for i in items if isinstance(i, dict) and i.get("tag_name") == tag]
    try:
        if wanted:
            return parse_release_list(wanted)[0]
    except CatalogError as exc:
        raise DownloadError(str(exc)) from exc
    if isinstance(data, list) and "/releases" in url:  # not among the newest: ask for the tag itself
        tag_url = url.split("?", 1)[0].rstrip("/") + f"/tags/{urllib.parse.quote(tag)}"
        try:
            return fetch_release(tag_url, None, timeout)
        except DownloadError as exc:
            if "HTTP 404" in str(exc):
                raise DownloadError(f"llama.cpp release {safe_text(tag)} was not found ({tag_url} answered 404)") from exc
            raise
    raise DownloadError(f"llama.cpp release {safe_text(tag)} was not found at {_show(url)}")


# --- one archive ----------------------------------------------------------------------------------

def write_chunk(fh: IO[bytes], chunk: bytes) -> None:
    fh.write(chunk)


def disk_error(exc: OSError, where: Path) -> DownloadError | None:
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return DownloadError(f"the disk is full: llama.cpp could not be written to {where}; free some space and "
                             "try again (nothing was installed)")
    return None


class Meter:
    """Progress over all assets, at most ten reports a second."""

    def __init__(self, progress: Progress | None, total: int, span: tuple[float, float]) -> None:
        self.progress, self.total, self.span = progress, max(total, 1), span
        self.done, self._last = 0, 0.0

    def add(self, n: int, name: str) -> None:
        self.done += n
        now = time.monotonic()
        if self.progress is None or (now - self._last < 0.1 and self.done < self.total):
            return
        self._last = now
        frac = min(self.span[0] + (self.span[1] - self.span[0]) * self.done / self.total, self.span[1])
        self.progress(f"downloading {name}: {self.done / 1e6:,.1f} of {self.total / 1e6:,.1f} MB", frac)


def check_digest_listed(asset: Any) -> None:
    """A digest that is listed but cannot be read is refused, never taken for none (before any byte)."""
    if asset.digest_problem:
        raise DownloadError(f"the release lists a digest for {asset.name} that cannot be checked "
                            f"({asset.digest_problem}); refusing to install it unverified (nothing was downloaded)")


def _shut(resp: Any) -> None:
    """Shut a response's socket from another thread: a read waiting for data returns at once."""
    sock = getattr(getattr(getattr(resp, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def download_asset(asset: Any, dest: Path, meter: Meter, cancel: Cancellable | None) -> str:
    """Stream ``asset`` to ``dest``; the size must match exactly, and the digest when one is listed.
    Returns the SHA-256 computed (recorded whether or not the release listed one)."""
    check_digest_listed(asset)
    digest = hashlib.sha256()
    got = 0
    with open_url(asset.url, "application/octet-stream") as resp:
        register = getattr(cancel, "register", None)  # a CancelToken also ends a read that waits for data
        unregister = register(lambda: _shut(resp)) if callable(register) else (lambda: None)
        try:
            with open(dest, "wb") as fh:
                while True:
                    if cancel is not None and cancel.is_set():
                        raise DownloadCancelled("download cancelled; nothing was installed")
                    chunk = resp.read(CHUNK)
                    if not chunk:
                        break
                    got += len(chunk)
                    if got > asset.size:
                        raise DownloadError(f"{asset.name} is larger than the {asset.size:,} bytes the release lists; "
                                            "the download is corrupt (nothing was installed)")
                    write_chunk(fh, chunk)
                    digest.update(chunk)
                    meter.add(len(chunk), asset.name)
        except (http.client.IncompleteRead, ConnectionError, TimeoutError, OSError) as exc:
            if cancel is not None and cancel.is_set():  # the socket was shut under the read: a cancel
                raise DownloadCancelled("download cancelled; nothing was installed") from exc
            if isinstance(exc, (http.client.IncompleteRead, ConnectionError, TimeoutError)):
                raise DownloadError(f"the download of {asset.name} was interrupted after {got:,} of "
                                    f"{asset.size:,} bytes ({type(exc).__name__}); try again") from exc
            disk = disk_error(exc, dest.parent)
            if disk is not None:
                raise disk from exc
            raise DownloadError(f"{asset.name} could not be saved to {dest.parent}: {exc.strerror or exc}") from exc
        finally:
            unregister()
    if cancel is not None and cancel.is_set():
        raise DownloadCancelled("download cancelled; nothing was installed")
    if got != asset.size:
        raise DownloadError(f"the download of {asset.name} was cut short ({got:,} of {asset.size:,} bytes); try again")
    computed = digest.hexdigest()
    if asset.sha256 is not None and computed != asset.sha256:
        raise DownloadError(f"{asset.name} does not match the SHA-256 digest the release lists (got "
                            f"{computed[:16]}…, expected {asset.sha256[:16]}…): the download is corrupt; "
                            "nothing was installed")
    return computed
