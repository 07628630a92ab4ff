"""Keep secrets and (on request) the user's identity out of documents meant to be shared.

A snapshot is the document users are told to attach to a bug report, so everything tffix
writes for others to read passes through here first. Pure: strings in, strings out.

* ``redact_value(name, value)``: a variable whose *name* says it holds a secret (``…TOKEN``,
  ``…PASSWORD``, ``…SECRET``, ``…API_KEY``, …) is replaced whole; any other value keeps its
  text with the secret-shaped parts replaced (see ``redact_text``).
* ``redact_text(text)``: credentials in URLs (``https://user:pw@host``), well-known token shapes
  (GitHub, GitLab, Hugging Face, Slack, AWS access key ids, JWTs, private-key blocks) and
  ``password=…`` / ``Authorization: Bearer …`` forms in a line.
* ``redact_paths(text, home, user)``: the home folder becomes ``~`` and the user name, where it
  stands as a path component or before an ``@``, becomes ``<user>``.
* ``redact_tree(obj, …)``: the same over every key and string of a JSON-like document.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tffix.lazyre import lazy

REDACTED = "<redacted>"

_SECRET_NAME = lazy(
    r"(PASS(WORD|WD)?|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIALS?|AUTH|COOKIE"
    r"|SESSION_?KEY|SIGNING_?KEY)",
    re.IGNORECASE,
)
"""A variable name that announces a secret: its whole value is withheld."""

_URL_CREDENTIALS = lazy(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/\s:@]+):[^/\s@]+@")
_TOKENS = lazy(
    "|".join(
        (
            r"\bgh[pousr]_[A-Za-z0-9]{20,}",  # GitHub tokens
            r"\bgithub_pat_[A-Za-z0-9_]{20,}",
            r"\bglpat-[A-Za-z0-9_-]{20,}",  # GitLab
            r"\bhf_[A-Za-z0-9]{20,}",  # Hugging Face
            r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
            r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key ids
            r"\bsk-[A-Za-z0-9_-]{20,}",  # API keys of the sk- form
            r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWT
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
        )
    )
)
_ASSIGNED = lazy(
    r"(?P<key>\b[A-Za-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key)"
    r"[A-Za-z0-9_.-]*\s*[=:]\s*)"
    r"(?P<q>['\"]?)(?P<value>[^\s'\"&;,]+)(?P=q)",
    re.IGNORECASE,
)
_BEARER = lazy(r"(?P<key>\b(?:Bearer|Basic|token)\s+)[A-Za-z0-9._~+/=-]{12,}")


def is_secret_name(name: str) -> bool:
    """Whether a variable called *name* holds a secret by its own account."""
    return bool(_SECRET_NAME.search(name))


def redact_text(text: str) -> str:
    """*text* with every secret-shaped part replaced by ``<redacted>``."""
    if not text:
        return text
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    text = _TOKENS.sub(REDACTED, text)
    text = _ASSIGNED.sub(lambda m: f"{m['key']}{m['q']}{REDACTED}{m['q']}", text)
    return _BEARER.sub(lambda m: f"{m['key']}{REDACTED}", text)


def redact_value(name: str, value: str) -> str:
    """The value of the variable *name* as a shared document may show it."""
    if value and is_secret_name(name):
        return REDACTED
    return redact_text(value)


def redact_paths(text: str, *, home: str | None, user: str | None) -> str:
    """*text* with the home folder as ``~`` and the user name as ``<user>``."""
    if home and len(home.rstrip("/")) > 1:
        home = home.rstrip("/")
        text = re.sub(re.escape(home) + r"(?=/|\\|$|[\s:;'\"])", "~", text)
    if user and len(user) >= 2:
        text = re.sub(rf"(?<=[/\\]){re.escape(user)}(?=[/\\]|$|[\s:;'\"])", "<user>", text)
        text = re.sub(rf"\b{re.escape(user)}(?=@)", "<user>", text)
    return text


def redact_tree(
    obj: Any, *, text: Callable[[str], str] = redact_text, env_keys: tuple[str, ...] = ("env",)
) -> Any:
    """A copy of the JSON-like *obj* with *text* applied to every string and key.

    Under a mapping named in *env_keys* (a document's ``env`` section), values are judged by
    their variable's name too (``redact_value``).
    """

    def walk(node: Any, env: bool) -> Any:
        if isinstance(node, str):
            return text(node)
        if isinstance(node, dict):
            out: dict[Any, Any] = {}
            for key, value in node.items():
                new_key = text(key) if isinstance(key, str) else key
                if env and isinstance(key, str) and isinstance(value, str):
                    out[new_key] = text(redact_value(key, value))
                else:
                    out[new_key] = walk(value, isinstance(key, str) and key in env_keys)
            return out
        if isinstance(node, (list, tuple)):
            return [walk(item, False) for item in node]
        return node

    return walk(obj, False)
