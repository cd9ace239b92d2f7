"""Reading the channels' numeric settings from the environment."""

from typing import Mapping


def whole_number(env: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    """The variable `name` as a whole number from 1 to `maximum`; `default`
    when it is unset or blank. Raises ValueError saying what is wrong."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ValueError(f"{name} must be a whole number from 1 to {maximum}, not {raw!r}")
    return int(raw)
