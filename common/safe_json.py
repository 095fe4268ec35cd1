"""JSON from untrusted callers: parsed without ever raising anything but ``ValueError``.

``json.loads`` recurses once per nesting level, so a few kilobytes of ``[[[[…`` raise
``RecursionError`` (a 500 wherever it is not expected). ``loads`` turns that, and any nesting
deeper than ``MAX_DEPTH``, into ``JsonTooDeepError``, a ``ValueError`` like every other way a
body can fail to be JSON; callers answer all of them with a 400.
"""

from __future__ import annotations

import json
from typing import Any

# Our own bodies nest three levels; Cloudflare's webhooks about five.
MAX_DEPTH = 64


class JsonTooDeepError(ValueError):
    """The document nests arrays or objects deeper than we accept."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"JSON nested deeper than {max_depth} levels")
        self.max_depth = max_depth


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` for untrusted input.

    Raises:
        JsonTooDeepError: nesting deeper than ``max_depth`` (or deep enough to exhaust the stack).
        ValueError: not UTF-8 (``UnicodeDecodeError``) or not JSON (``json.JSONDecodeError``).
    """
    try:
        document = json.loads(raw)
    except RecursionError as exc:
        raise JsonTooDeepError(max_depth) from exc
    if depth_exceeds(document, max_depth):
        raise JsonTooDeepError(max_depth)
    return document


def depth_exceeds(document: Any, max_depth: int) -> bool:
    """Whether arrays/objects nest more than ``max_depth`` levels (iterative: no recursion).

    A scalar has depth 0, ``[]`` and ``{}`` depth 1, ``[[1]]`` depth 2.
    """
    pending: list[tuple[Any, int]] = [(document, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth + 1 > max_depth:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False
