"""Downloading a knowledge graph's source file: streamed, resumable, verified, atomic.

The file grows in ``<dest>.part``; an interrupted or truncated download keeps it, and the
next call asks the server for the rest with an HTTP Range request (a server that ignores
the range gets the file restarted from the start). The size announced by the server
(Content-Length, or the total of Content-Range) is checked and, when given, a SHA-256;
only a verified file is renamed to ``dest``.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from graphs.progress import Progress

# PrimeKG's kg.csv on Harvard Dataverse (doi:10.7910/DVN/IXA7BM), redirected to its storage.
PRIMEKG_URL = "https://dataverse.harvard.edu/api/access/datafile/6180620"
CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class DownloadError(RuntimeError):
    """The download failed; the message says why and what to do."""


def download(
    url: str,
    dest: Path,
    progress: Progress | None = None,
    sha256: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """Fetch ``url`` into ``dest`` (resuming ``dest.part``) and return ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    host = urlsplit(url).netloc or url
    try:
        with httpx.Client(follow_redirects=True, timeout=timeout) as client:
            total = _fetch(client, url, part, progress)
    except httpx.ConnectError as exc:
        raise DownloadError(f"cannot reach {host}: {exc}; check your network or pass --url") from exc
    except httpx.TimeoutException as exc:
        raise DownloadError(
            f"{host} timed out ({exc.__class__.__name__}); {_kept(part)} re-running resumes the download"
        ) from exc
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        raise DownloadError(
            f"the download from {host} was truncated ({exc}); {_kept(part)} re-running resumes it"
        ) from exc
    size = part.stat().st_size
    if total is not None and size < total:
        raise DownloadError(
            f"the download from {host} was truncated: {size:,} of {total:,} bytes; "
            f"{_kept(part)} re-running resumes it"
        )
    if total is not None and size > total:
        part.unlink()
        raise DownloadError(f"{url} sent {size:,} bytes, more than the announced {total:,}; deleted it")
    if sha256:
        digest = _sha256(part)
        if digest.lower() != sha256.strip().lower():
            part.unlink()
            raise DownloadError(
                f"{url}: SHA-256 mismatch (expected {sha256.strip().lower()}, got {digest}); "
                "deleted the download"
            )
    os.replace(part, dest)
    return dest


def _fetch(client: httpx.Client, url: str, part: Path, progress: Progress | None) -> int | None:
    """Stream ``url`` into ``part``, resuming it; returns the full size if announced."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with client.stream("GET", url, headers=headers) as response:
        if response.status_code == 416 and offset:
            # Nothing to resume from (a stale or complete .part the server cannot extend).
            response.close()
            part.unlink()
            return _fetch(client, url, part, progress)
        if response.status_code == 206 and offset:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", "").strip())
            if match is None or int(match.group(1)) != offset:
                raise DownloadError(
                    f"{url} answered a range request with an unexpected Content-Range "
                    f"{response.headers.get('content-range')!r}; delete {part} and retry"
                )
            total = None if match.group(3) == "*" else int(match.group(3))
            mode = "ab"
            if progress is not None:
                progress.note(f"Resuming the download at {offset:,} bytes")
        elif response.status_code in (200, 206):
            if offset and progress is not None:
                progress.note("The server does not support resuming: restarting the download")
            offset = 0
            length = response.headers.get("content-length")
            total = int(length) if length and length.isdigit() else None
            mode = "wb"
        else:
            raise DownloadError(f"{url} answered HTTP {response.status_code} {response.reason_phrase}")
        update = progress.task(f"Downloading {part.name.removesuffix('.part')}", total) if progress else None
        done = offset
        with open(part, mode) as out:
            for chunk in response.iter_bytes():  # as received: a cut keeps all it got
                out.write(chunk)
                done += len(chunk)
                if update is not None:
                    update(done)
    return total


def _kept(part: Path) -> str:
    return f"the partial file {part} is kept;" if part.exists() else ""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()
