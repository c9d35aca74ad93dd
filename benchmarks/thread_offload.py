"""Where should predict leave the event loop? Measures asyncio.to_thread's own cost.

Compares, for a busy-wait "predict" of a given cost, the time per call inline on the loop
and through asyncio.to_thread, and the event-loop stall each inline call causes. The
offload rule in modelport/serving/dataplane.py (THREAD_AFTER_S) comes from this: offloading pays
once a predict blocks the loop for much longer than the hop to a thread costs.

    python benchmarks/thread_offload.py
"""

from __future__ import annotations

import asyncio
import statistics
import time


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def measure(cost: float, n: int = 400) -> tuple[float, float]:
    inline, threaded = [], []
    for _ in range(n):
        t = time.perf_counter()
        spin(cost)
        inline.append(time.perf_counter() - t)
        t = time.perf_counter()
        await asyncio.to_thread(spin, cost)
        threaded.append(time.perf_counter() - t)
    return statistics.median(inline), statistics.median(threaded)


async def main() -> None:
    print("predict cost | inline median | to_thread median | hop overhead")
    for cost in (0.0, 10e-6, 100e-6, 1e-3, 2e-3, 5e-3):
        a, b = await measure(cost)
        print(f"{cost * 1e6:10.0f} µs | {a * 1e6:10.1f} µs | {b * 1e6:13.1f} µs | {(b - a) * 1e6:9.1f} µs")


if __name__ == "__main__":
    asyncio.run(main())
