"""Runtime histograms with geometric buckets: mergeable by adding, percentiles to ~12%.

Per-minute rollups store one of these per task name; an hour or a day is the element-wise
sum of its minutes, so charts and percentiles never scan task history.
"""

import bisect
import math
from collections.abc import Iterable, Sequence

GROWTH = 1.25
SMALLEST = 0.001  # seconds
# Upper bounds of each bucket; the last bucket is open-ended (anything past a day).
BOUNDS: tuple[float, ...] = tuple(
    SMALLEST * GROWTH**i for i in range(int(math.log(86400 / SMALLEST, GROWTH)) + 2)
)
SIZE = len(BOUNDS) + 1


def bucket_of(runtime: float) -> int:
    return bisect.bisect_left(BOUNDS, max(runtime, 0.0))


def empty() -> list[int]:
    return [0] * SIZE


def add(into: list[int], other: Sequence[int]) -> list[int]:
    for i, count in enumerate(other[:SIZE]):
        into[i] += count
    return into


def from_runtimes(runtimes: Iterable[float]) -> list[int]:
    hist = empty()
    for runtime in runtimes:
        hist[bucket_of(runtime)] += 1
    return hist


def percentile(hist: Sequence[int], fraction: float) -> float | None:
    """The runtime below which ``fraction`` of the counted tasks fall (bucket midpoint)."""
    total = sum(hist)
    if total == 0:
        return None
    rank = fraction * total
    seen = 0
    for i, count in enumerate(hist):
        seen += count
        if count and seen >= rank:
            lower = BOUNDS[i - 1] if i > 0 else 0.0
            upper = BOUNDS[i] if i < len(BOUNDS) else BOUNDS[-1] * GROWTH
            return (lower + upper) / 2
    return BOUNDS[-1]
