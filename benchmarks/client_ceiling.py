"""How fast can ``modelport bench`` send? Its ceiling against a near-free constant endpoint.

Starts benchmarks/apps/raw_constant_server.py (one process, prebuilt response) and
drives it with modelport's client and with wrk at several concurrencies, in
alternating rounds. The client's own estimate (requests per CPU-second it spent) is
printed too; ``modelport bench`` warns when a run uses most of a core.
Run:  python benchmarks/client_ceiling.py [--seconds 3 --rounds 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from common import BENCH, Server, free_port, machine, median, run_wrk, tool_version

from modelport import bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--levels", default="1,8,32")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]
    port = free_port()
    server = Server("raw-constant", [sys.executable, str(BENCH / "apps" / "raw_constant_server.py"), str(port)],
                    f"http://127.0.0.1:{port}/", port)  # fmt: skip
    print(f"machine: {machine()}", file=sys.stderr)
    server.start()
    url = f"http://127.0.0.1:{port}/"
    ours: dict[int, list[float]] = {c: [] for c in levels}
    self_est: dict[int, list[float]] = {c: [] for c in levels}
    busy: dict[int, list[float]] = {c: [] for c in levels}
    wrk: dict[int, list[float]] = {c: [] for c in levels}
    try:
        target = bench.make_target(url)
        for r in range(args.rounds):
            for c in levels:
                steps = ("ours", "wrk") if r % 2 == 0 else ("wrk", "ours")
                for step in steps:
                    if step == "ours":
                        res = bench.run(target, duration=args.seconds, concurrency=c, warmup=100)
                        ours[c].append(res.rps)
                        self_est[c].append(res.client_ceiling_rps or 0.0)
                        busy[c].append(res.client_busy)
                    else:
                        wrk[c].append(run_wrk(url, None, c, args.seconds).rps)
                print(f"round {r + 1}: c={c} modelport bench {ours[c][-1]:,.0f} req/s "
                      f"(client busy {busy[c][-1]:.0%}), wrk {wrk[c][-1]:,.0f} req/s", file=sys.stderr)  # fmt: skip
    finally:
        server.stop()
    print(f"client ceiling against a constant endpoint (wrk {tool_version('wrk')}; medians of {args.rounds} rounds "
          f"of {args.seconds:g} s)\n")  # fmt: skip
    print("| c | modelport bench req/s | client CPU share | its own ceiling estimate | wrk -t1 req/s |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for c in levels:
        print(f"| {c} | {median(ours[c]):,.0f} | {median(busy[c]):.0%} | {median(self_est[c]):,.0f} | "
              f"{median(wrk[c]):,.0f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
