"""Credentials never recorded or shown: secret-bearing Beam flags and URL passwords, redacted.

A run's Beam flags are kept with the run in the metadata store, printed in
messages and sometimes logged by Beam itself; ``--metadata-url`` may carry a
database password. Anything that records or prints them passes it through
here first:

- :func:`redact_args` replaces the value of every flag named like a secret
  (``secret``, ``token``, ``password``, ``key``, ``credential``: S3 keys and
  session tokens among them) and the password of every URL in a value;
- :func:`redact_url` hides the password of one URL;
- :func:`register_args` / :func:`register_url` remember the secret values a
  run uses, and :func:`scrub` replaces them in free text (log records,
  stored tracebacks), where a secret may appear in any form.

The way to pass credentials is the standard chains, which keep them out of
the command line altogether: AWS's environment variables or profile for
S3, Google's application-default credentials for GCS (see the README).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Sequence

MASK = "***"
#: Parts of a flag name that mark its value as a secret.
SECRET_WORDS = ("secret", "token", "password", "passwd", "pwd", "key", "credential")
#: ``scheme://user:password@`` in any text; the password is group 2.
_URL_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)([^@/\s]+)(@)")

_known: set[str] = set()
_known_lock = threading.Lock()


def is_secret_flag(name: str) -> bool:
    """Whether a flag (``--s3_secret_access_key``, ``db-password``) carries a secret value."""
    normalized = name.lstrip("-").lower().replace("-", "_")
    return any(word in normalized for word in SECRET_WORDS)


def redact_url(url: str) -> str:
    """``url`` with the password of every ``scheme://user:password@`` in it replaced by ``***``."""
    return _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), url)


def redact_args(args: Sequence[str]) -> list[str]:
    """Flags as given, with secret flags' values and URL passwords replaced by ``***``."""
    redacted: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next:
            redacted.append(MASK)
            hide_next = False
            continue
        if arg.startswith("-") and "=" in arg:
            name, value = arg.split("=", 1)
            redacted.append(f"{name}={MASK}" if is_secret_flag(name) else f"{name}={redact_url(value)}")
            continue
        if arg.startswith("--") and is_secret_flag(arg):
            redacted.append(arg)
            hide_next = True
            continue
        redacted.append(redact_url(arg))
    return redacted


def secret_flags(args: Sequence[str]) -> list[str]:
    """The flags (redacted) whose values are secret: what an exported pipeline file must not carry."""
    return [arg for arg in redact_args(args) if MASK in arg]


def secret_values(args: Sequence[str]) -> set[str]:
    """The secret values in a list of flags: of secret-named flags and URL passwords."""
    found: set[str] = set()
    for index, arg in enumerate(args):
        if arg.startswith("-") and "=" in arg:
            name, value = arg.split("=", 1)
            if is_secret_flag(name):
                found.add(value)
        elif arg.startswith("--") and is_secret_flag(arg) and index + 1 < len(args):
            found.add(args[index + 1])
        found.update(m.group(2) for m in _URL_PASSWORD.finditer(arg))
    return {value for value in found if value}


def register_args(args: Sequence[str]) -> None:
    """Remember the secret values in these flags so that :func:`scrub` removes them from text."""
    _register(secret_values(args))


def register_url(url: str | None) -> None:
    """Remember the password of a URL (``--metadata-url``) so that :func:`scrub` removes it from text."""
    if url:
        _register(m.group(2) for m in _URL_PASSWORD.finditer(url))


def _register(values: Iterable[str]) -> None:
    with _known_lock:
        _known.update(v for v in values if len(v) >= 4)  # a one-letter "secret" would mask half of every line


def scrub(text: str) -> str:
    """``text`` with URL passwords and every registered secret value replaced by ``***``."""
    text = redact_url(text)
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        text = text.replace(value, MASK)
    return text


class ScrubbingFormatter(logging.Formatter):
    """A log formatter whose output has passed through :func:`scrub` (messages, arguments and tracebacks)."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))
