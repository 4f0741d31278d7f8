"""Provenance fingerprints: sha256 of canonical JSON, and readable differences between two provenances.

A provenance is a JSON-able dict of exactly the inputs that decide an array's content.
`canonical(p)` is its normal form (tuples become lists, keys sorted on output), so a
provenance read back from store attributes compares equal to the one a stage builds.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

MISSING = "<absent>"  # how a key present on one side only is shown in a difference


def canonical_json(value: Any) -> str:
    """Deterministic JSON text: sorted keys, no whitespace, no NaN; TypeError if not JSON-able."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def canonical(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples as lists, dict keys as strings)."""
    return json.loads(canonical_json(value))


def fingerprint(value: Any) -> str:
    """sha256 hex digest of `canonical_json(value)`."""
    return hashlib.sha256(canonical_json(value).encode("ascii")).hexdigest()


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one dict with dotted keys; anything else is a leaf."""
    if not isinstance(value, dict):
        return {prefix: value}
    if not value and prefix:
        return {prefix: {}}
    flat: dict[str, Any] = {}
    for key, inner in value.items():
        flat.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def differences(stored: dict, wanted: dict) -> list[tuple[str, Any, Any]]:
    """(dotted key, stored value, wanted value) for every leaf that differs, sorted by key."""
    old, new = flatten(canonical(stored)), flatten(canonical(wanted))
    return [
        (key, old.get(key, MISSING), new.get(key, MISSING))
        for key in sorted(old.keys() | new.keys())
        if old.get(key, MISSING) != new.get(key, MISSING)
    ]


def describe_differences(stored: dict, wanted: dict) -> str:
    """The differences as one line, e.g. 'keep_prob=0.1, params say 0.05; seed=1, params say 0'."""
    return "; ".join(f"{key}={show(old)}, params say {show(new)}" for key, old, new in differences(stored, wanted))


def show(value: Any) -> str:
    """A leaf value as the user wrote it (JSON, strings unquoted)."""
    return value if isinstance(value, str) else canonical_json(value)
