"""What every command's options share: comma lists."""

from __future__ import annotations


def comma_list(value: str | None) -> tuple[str, ...] | None:
    """'a, b,c' -> ('a', 'b', 'c'); None (option not given) stays None."""
    return None if value is None else tuple(v.strip() for v in value.split(",") if v.strip())
