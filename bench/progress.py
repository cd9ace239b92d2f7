"""Progress lines while the benchmark runs: time since the start, then what it is doing."""

import time

_START = time.monotonic()


def elapsed() -> float:
    return time.monotonic() - _START


def say(message: str) -> None:
    minutes, seconds = divmod(int(elapsed()), 60)
    print(f"[{minutes:02d}:{seconds:02d}] {message}", flush=True)
