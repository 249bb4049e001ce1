"""Talking to the Hugging Face Hub through ``huggingface_hub``: search, one repository's files, the words
for every way that fails, and where the token comes from.

The library does the Hub's protocol: the endpoint (``HF_ENDPOINT``), the token (``HF_TOKEN``, else the
login saved by ``hf auth login``; ``build_hf_headers`` adds it, the launcher never reads or stores it),
the shared HTTP session, error classes from the Hub's ``X-Error-Code`` header, the answer types
(``ModelInfo``, ``RepoFile``) and the cache layout. What is ours: one request per user action with a
timeout (``list_models`` and ``list_repo_tree`` retry connection errors and 5xx answers five times over
~23 s, so being offline would freeze a search that long), and one line of words for each failure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import httpx2
from huggingface_hub import constants
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import hf_hub_url
from huggingface_hub.hf_api import HfApi, RepoFile
from huggingface_hub.hf_api import ModelInfo as HubModelInfo
from huggingface_hub.utils import build_hf_headers, get_session, get_token, hf_raise_for_status

from llama_launcher.core.state.errors import UserFacing
from llama_launcher.core.state.safe_text import safe_text

TIMEOUT_S = 20.0
SEARCH_LIMIT = 30
MAX_REPO_FILES = 20_000  # a listing longer than this is not a model repository anyone downloads from here


class HubError(UserFacing):
    """A Hub request that failed; the message is one line for the user (never the token)."""


@dataclass(frozen=True)
class RepoHit:
    """One search result."""

    repo_id: str
    downloads: int
    likes: int
    updated: str | None  # ISO date of the last change
    gated: str | None  # "auto" / "manual" when gated, else None
    private: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"repo": self.repo_id, "downloads": self.downloads, "likes": self.likes, "updated": self.updated,
                "gated": self.gated, "private": self.private}


@dataclass(frozen=True)
class RemoteFile:
    """One file of a repository at one commit: what the listing says of it."""

    path: str  # inside the repository, "/"-separated (split quants often sit in a folder: Q6_K/...)
    size: int
    sha256: str | None  # LFS files (every GGUF): the Hub's SHA-256 of the content, also the cache's blob name
    blob_id: str = ""

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass
class RepoListing:
    repo_id: str
    commit: str
    gated: str | None
    files: list[RemoteFile] = field(default_factory=list)


def token_source() -> str:
    """Where the token the library sends comes from, in words (the token itself is never shown)."""
    if os.environ.get("HF_TOKEN"):
        return "the HF_TOKEN environment variable"
    if get_token():
        return f"the login saved by `hf auth login` ({constants.HF_TOKEN_PATH})"
    return "none: not logged in (run `hf auth login`, or set HF_TOKEN)"


def default_cache_dir() -> str:
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return constants.HF_HUB_CACHE


def _host(url: str) -> str:
    return urlparse(url).netloc or url


def explain(exc: BaseException, endpoint: str, repo_id: str | None = None) -> str:
    """One line for a failed Hub request: what happened and what to do."""
    host = _host(endpoint)
    what = repo_id or "the Hub"
    if isinstance(exc, OfflineModeIsEnabled):
        return "offline mode is on (HF_HUB_OFFLINE is set): unset it to reach the Hub; models on disk still work"
    if isinstance(exc, GatedRepoError):
        return (f"{what} is gated: accept its terms at {endpoint}/{repo_id}, then log in (`hf auth login`, or set "
                f"HF_TOKEN) with that account; token used: {token_source()}")
    if isinstance(exc, RevisionNotFoundError):
        return f"{what} has no such revision on {host}"
    if isinstance(exc, RepositoryNotFoundError):
        return (f"no repository {what} on {host}, or it is private: check the name, or log in (`hf auth login`, "
                f"or set HF_TOKEN); token used: {token_source()}")
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return status_words(exc.response.status_code, host, what, exc.response.headers.get("Retry-After"))
    if isinstance(exc, httpx2.TimeoutException):
        return f"{host} did not answer in time: the connection is slow or stalled; try again"
    if isinstance(exc, (httpx2.NetworkError, httpx2.ProtocolError, ConnectionError)):
        return (f"cannot reach {host}: you seem to be offline ({safe_text(exc, max_len=120) or type(exc).__name__});"
                " models already on disk still work")
    return f"the request to {host} failed: {safe_text(exc, max_len=200) or type(exc).__name__}"


def status_words(code: int, host: str, what: str, retry_after: str | None = None) -> str:
    """Words for an HTTP status from the Hub or its file servers."""
    if code == 401:
        return (f"{host} refused the request for {what} (401 unauthorized): log in again (`hf auth login`, or set "
                f"HF_TOKEN); token used: {token_source()}")
    if code == 403:
        return (f"{host} denied access to {what} (403 forbidden): the repository may be gated or your token lacks "
                f"read access; token used: {token_source()}")
    if code == 404:
        return f"{what} was not found on {host} (404)"
    if code == 429:
        wait = f" (the Hub asks to wait {safe_text(retry_after, max_len=20)} s)" if retry_after else ""
        return f"{host} is rate-limiting requests (429 too many requests){wait}: wait a minute and try again"
    if 500 <= code < 600:
        return f"{host} failed ({code} server error): the Hub has a problem right now; try again later"
    return f"{host} answered {code} for {what}"


class HubClient:
    """The Hub as the launcher uses it. ``endpoint`` and ``cache_dir`` default to what the library uses
    (``HF_ENDPOINT``; ``HF_HUB_CACHE``, else ``HF_HOME``/hub, else ~/.cache/huggingface/hub). The library reads
    those variables once, when it is imported; they are read again when a client is made, as the catalog
    reads them at every scan, so the folder a download goes to is always one the catalog scans."""

    def __init__(self, endpoint: str | None = None, cache_dir: str | None = None, timeout: float = TIMEOUT_S) -> None:
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
        self.cache_dir = cache_dir or default_cache_dir()
        self.timeout = timeout
        self.api = HfApi(endpoint=self.endpoint)

    def headers(self) -> dict[str, str]:
        """The library's headers: user agent and, when logged in, the token (sent to the Hub only)."""
        return build_hf_headers()

    def search(self, query: str, limit: int = SEARCH_LIMIT) -> list[RepoHit]:
        """GGUF model repositories matching ``query``, most downloaded first.

        The request is ``HfApi.list_models``' own (``GET /api/models`` with ``search``, ``filter=gguf``,
        ``sort``, ``limit`` and ``expand``; answers parsed by the library's ``ModelInfo``), made once."""
        params: dict[str, Any] = {"search": query, "filter": "gguf", "sort": "downloads", "limit": limit,
                                  "expand": ["downloads", "likes", "lastModified", "gated", "private"]}
        try:
            r = get_session().get(f"{self.endpoint}/api/models", params=params, headers=self.headers(),
                                  timeout=self.timeout)
            hf_raise_for_status(r)
            items = r.json()
        except (HfHubHTTPError, httpx2.HTTPError, OSError) as exc:
            raise HubError(f"search failed: {explain(exc, self.endpoint)}") from None
        except ValueError:
            raise HubError(f"search failed: {_host(self.endpoint)} sent an answer that is not JSON") from None
        if not isinstance(items, list):
            raise HubError(f"search failed: {_host(self.endpoint)} sent an answer that is not a list of models")
        hits = []
        for item in items[:limit]:
            try:
                m = HubModelInfo(**item)
            except (TypeError, KeyError, ValueError, AttributeError):
                continue  # one odd entry does not spoil the rest
            hits.append(RepoHit(m.id, m.downloads or 0, m.likes or 0,
                                m.last_modified.date().isoformat() if m.last_modified else None,
                                m.gated or None, bool(m.private)))
        return hits

    def listing(self, repo_id: str) -> RepoListing:
        """The repository's commit, gating and every file (recursive, with sizes and LFS SHA-256s)."""
        try:
            info = self.api.model_info(repo_id, timeout=self.timeout)
            commit = info.sha
            if not commit:
                raise HubError(f"{repo_id}: the Hub did not say which commit it serves")
            files: list[RemoteFile] = []
            for entry in self.api.list_repo_tree(repo_id, recursive=True, revision=commit):
                if isinstance(entry, RepoFile):
                    files.append(RemoteFile(entry.path, int(entry.size or 0),
                                            entry.lfs.sha256 if entry.lfs else None, entry.blob_id or ""))
                    if len(files) > MAX_REPO_FILES:
                        raise HubError(f"{repo_id} lists more than {MAX_REPO_FILES:,} files; not read further")
        except HubError:
            raise
        except (HfHubHTTPError, httpx2.HTTPError, OSError) as exc:
            raise HubError(explain(exc, self.endpoint, repo_id)) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise HubError(f"{repo_id}: the Hub's file list could not be read ({safe_text(exc, max_len=120)})") from None
        return RepoListing(repo_id, commit, info.gated or None, files)

    def resolve_url(self, repo_id: str, path: str, commit: str) -> str:
        return hf_hub_url(repo_id, path, revision=commit, endpoint=self.endpoint)
