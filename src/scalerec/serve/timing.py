"""Where a request's time goes: wall time per named stage, and the `Server-Timing` header it becomes.

The serving bar is per request (p50 <= 10 ms), and a latency measured only end to end cannot say
whether the transformer, the FAISS search or the HTTP layer should be made faster. Every service
call therefore times its stages (one `perf_counter` per stage, ~0.1 us); when `ServeConfig.
server_timing` is on, the HTTP hot path sends them back in the standard `Server-Timing` response
header (W3C Server Timing: `name;dur=<ms>`), which the benchmark's load generator reads, so the
split is measured on the real server path, per request, with no extra endpoint or shared state.
A micro-batch's stages are shared by its requests (one encode, one search); `batch` says how many.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping


class StageClock:
    """Milliseconds per stage of one call, in the order the stages ran (`lap` closes a stage)."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.ms: dict[str, float] = {}

    def lap(self, stage: str) -> float:
        """Close `stage` (time since the previous lap, added to what it already holds); returns now."""
        now = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (now - self.last) * 1e3
        self.last = now
        return now

    def add(self, parts: Mapping[str, float] | None) -> None:
        """Record sub-stages measured elsewhere (ms), e.g. the encoder's own split of `encode`."""
        for stage, ms in (parts or {}).items():
            self.ms[stage] = self.ms.get(stage, 0.0) + ms


def server_timing(stages: Iterable[tuple[str, float]]) -> bytes:
    """`Server-Timing` header value: `name;dur=ms` entries, comma-separated (3 decimals: microseconds)."""
    return ", ".join(f"{name};dur={ms:.3f}" for name, ms in stages).encode("ascii")


def parse_server_timing(value: str) -> dict[str, float]:
    """The inverse of `server_timing`: {name: ms} (entries without `dur` are skipped)."""
    out: dict[str, float] = {}
    for entry in value.split(","):
        name, _, params = entry.strip().partition(";")
        for param in params.split(";"):
            key, _, val = param.strip().partition("=")
            if key == "dur" and name:
                out[name] = float(val)
    return out
