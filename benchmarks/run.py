"""Run the benchmark suite: ``python -m benchmarks [--quick]`` or ``python benchmarks/run.py``.

Starts the server of every variant in its own process, drives them all from
this process in interleaved rounds, prints the table, writes
``benchmarks/results/latest.json`` and draws ``benchmarks/results/latest.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import report
from benchmarks.clients import driver
from benchmarks.driver import Driver
from benchmarks.suite import SCENARIOS, Run, Settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
# Variants that talk to another variant's server.
SERVER_OF = {
    "transport-json": "transport",
    "transport-chunked": "transport",
    "transport-protobuf": "transport",  # the same server answers each call in its wire
}


def _server(variant: str) -> tuple[subprocess.Popen[bytes], int]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.servers", variant],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.strip().isdigit():
        process.kill()
        raise RuntimeError(f"the {variant} server did not start (said {line!r})")
    return process, int(line)


@contextmanager
def servers(variants: list[str]) -> Iterator[dict[str, tuple[int, int]]]:
    """Start one server process per variant; yield ``{variant: (pid, port)}``; stop them all."""
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        started = {}
        for variant in dict.fromkeys(SERVER_OF.get(v, v) for v in variants):
            process, port = _server(variant)
            processes[variant] = process
            started[variant] = (process.pid, port)
        yield {v: started[SERVER_OF.get(v, v)] for v in variants}
    finally:
        for process in processes.values():
            if process.stdin is not None:
                process.stdin.close()  # the server stops when its stdin closes
        for process in processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(
                line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    system = f"Linux {platform.release()}, Python {platform.python_version()}"
    return f"{model}, {os.cpu_count()} cores, {system}"


def main(argv: list[str] | None = None) -> int:
    """Run the suite; return the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a run under two minutes")
    mode.add_argument("--tiny", action="store_true", help="smoke test sizes; numbers mean nothing")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument(
        "--scenario", action="append", choices=list(SCENARIOS), help="run only these"
    )
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    args = parser.parse_args(argv)
    settings = Settings.tiny() if args.tiny else Settings.quick() if args.quick else Settings.full()
    scenarios = {name: SCENARIOS[name] for name in (args.scenario or SCENARIOS)}
    variants = list(dict.fromkeys(v for names in scenarios.values() for v in names))

    load_before, started = _load(), time.time()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    drivers: dict[str, Driver] = {}
    try:
        with servers(variants) as running:
            for variant in variants:
                drivers[variant] = driver(variant, running[variant][1], loop)
            run = Run(drivers, {v: pid for v, (pid, _) in running.items()}, settings)
            for name, members in scenarios.items():
                print(f"running {name} ...", file=sys.stderr, flush=True)
                getattr(run, name)(members)
            for variant_driver in drivers.values():
                variant_driver.close()
    finally:
        loop.close()

    context: dict[str, Any] = {
        "mode": "tiny" if args.tiny else "quick" if args.quick else "full",
        "machine": _machine(),
        "load_before": load_before,
        "load_after": _load(),
        "seconds": round(time.time() - started, 1),
        "settings": settings.__dict__,
    }
    print(report.table(run.measurements))
    load = f"load average before {load_before}, after {context['load_after']}"
    print(f"\nmachine: {context['machine']}; {load}")
    context["targets"] = report.targets(run.measurements)
    print("\ntargets:\n" + "\n".join(f"  {line}" for line in context["targets"]))
    print(f"wrote {report.write(run.measurements, args.out, context)}")
    if not args.no_chart:
        drawn = report.chart(run.measurements, args.out / "latest.png")
        print(f"drew {drawn}" if drawn else "no chart: install the 'bench' extra for matplotlib")
        scaled = report.scale_chart(run.measurements, args.out / "latest_scale.png")
        if scaled:
            print(f"drew {scaled}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
