"""JSON from outside (model files, web requests), parsed with a bound on nesting.

``json.loads`` recurses once per level of nesting: a few thousand ``[`` raise RecursionError,
which is not a ValueError and escapes the callers' error handling (a 500 from the web app, a
traceback from the CLI). ``loads`` turns that, and any nesting deeper than ``max_depth``, into a
ValueError that names what was being read.
"""
from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64      # nndl's own records nest 6 levels at most


def loads(text: str | bytes, what: str = "the JSON", max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads(text)``, or a ValueError if it is malformed or nested deeper than ``max_depth``."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply (more than {max_depth} levels)") from None
    stack = [(value, 1)]
    while stack:                      # iterative: a deep structure cannot overflow this check
        item, depth = stack.pop()
        if depth > max_depth:
            raise ValueError(f"{what} is nested too deeply (more than {max_depth} levels)")
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return value
