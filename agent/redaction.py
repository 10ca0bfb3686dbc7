"""Removing secrets from error texts before they are stored, logged or shown.

An endpoint or proxy may echo the request's key in its error body (a 401 saying "invalid
key sk-…"). Error texts from the LLM client become LLMError messages in one place
(``agent.reasoning.llm``); they pass through ``redact`` there, so results.jsonl, the checkpoints'
error writes, summary.json and every printed message only ever see the redacted text.

What is redacted: the configured key, and any token starting with its first 8 characters
(a server may echo a truncated key), plus anything shaped like a credential whoever it
belongs to: ``Bearer …`` values, ``sk-…``-style keys, ``api_key=…`` / ``"token": "…"``
pairs and the password of a URL (``https://user:…@host``). Redaction runs before any
truncation, so a cut-off key cannot slip through either.

URLs that are recorded or shown — the LLM endpoint in fingerprint.json, summary.json, the run
header, the viewer; a PostgreSQL checkpoint database — go through ``public_url``, the one
place that decides what of a URL may be written down: never its password, query string
(``?api_key=…``) or fragment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit, urlunsplit

REDACTED = "[REDACTED]"
_KEY_PREFIX = 8  # a configured key is recognised by its first 8 characters
_TOKEN_CHARS = r"[A-Za-z0-9_\-.~+/=]"
_SHAPES = (  # (pattern, replacement): the label is kept, the value goes
    (re.compile(r"(?i)\b(bearer|basic)\s+" + _TOKEN_CHARS + "+"), r"\1 " + REDACTED),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s/@:]*:)[^\s/@]+@"), r"\1" + REDACTED + "@"),  # scheme://user:password@
    (re.compile(r"\b(?:sk|pk|rk|ak)-" + _TOKEN_CHARS + r"{8,}"), REDACTED),
    (re.compile(
        r"""(?i)(["']?(?:api[_-]?key|access[_-]?token|token|secret|password|authorization)["']?\s*[:=]\s*["']?)"""
        r"""(?!\[REDACTED\]|(?:bearer|basic)\s)[^\s"',}]+"""
    ), r"\1" + REDACTED),
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without the given secrets and without anything shaped like a credential."""
    for secret in secrets:
        if not secret:
            continue
        if len(secret) >= _KEY_PREFIX:
            text = re.sub(re.escape(secret[:_KEY_PREFIX]) + _TOKEN_CHARS + "*", REDACTED, text)
        else:  # a short placeholder key: only where it stands alone
            text = re.sub(r"(?<![A-Za-z0-9_\-])" + re.escape(secret) + r"(?![A-Za-z0-9_\-])", REDACTED, text)
    for shape, replacement in _SHAPES:
        text = shape.sub(replacement, text)
    return text


def public_url(url: str, keep_user: bool = False) -> str:
    """``url`` as it may be recorded or shown: scheme, host, port and path only — no
    password, query string or fragment, and no user name unless ``keep_user`` (a database
    URL needs it to be opened again; the password then comes from the environment)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2].lower()  # host and port
    if keep_user and parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


_QUERY_SECRET_MIN = 6  # a query value shorter than this ("1", "true") is no credential, and is everywhere


def url_secrets(url: str | None) -> list[str]:
    """What of ``url`` may be a credential, for ``redact``: its password and its query values."""
    if not url:
        return []
    parts = urlsplit(url)
    values = [value for _, value in parse_qsl(parts.query) if len(value) >= _QUERY_SECRET_MIN]
    return [parts.password, *values] if parts.password else values
