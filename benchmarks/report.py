"""Turn measured rounds into rows, a printed table, ``latest.json`` and a chart."""

from __future__ import annotations

import importlib
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLOOR = "floor"
# Units where more is better: the ratio to the floor is then floor / value, so
# that a ratio above 1 always means slower (or bigger) than the floor.
_RATES = frozenset({"calls/s", "msgs/s", "MiB/s"})


@dataclass
class Measurement:
    """The samples of one metric of one variant in one scenario, one per round."""

    scenario: str
    variant: str
    metric: str
    unit: str
    samples: list[float] = field(default_factory=list)

    @property
    def value(self) -> float:
        """The median over rounds."""
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """Max minus min over rounds, as a fraction of the median."""
        return (max(self.samples) - min(self.samples)) / self.value if self.value else 0.0


def _ratio(measurement: Measurement, floor: Measurement | None) -> float | None:
    if floor is None or not floor.value or not measurement.value:
        return None
    if measurement.unit in _RATES:
        return round(floor.value / measurement.value, 3)
    return round(measurement.value / floor.value, 3)


def _rounded(value: float) -> float:
    return round(value, 1) if abs(value) >= 10 else round(value, 3)


def rows(measurements: list[Measurement]) -> list[dict[str, Any]]:
    """The rows of ``latest.json``: the median of each metric and its ratio to the floor."""
    floors = {(m.scenario, m.metric): m for m in measurements if m.variant == FLOOR}
    return [
        {
            "scenario": m.scenario,
            "variant": m.variant,
            "metric": m.metric,
            "value": _rounded(m.value),
            "unit": m.unit,
            "ratio_to_floor": _ratio(m, floors.get((m.scenario, m.metric))),
        }
        for m in measurements
    ]


def table(measurements: list[Measurement]) -> str:
    """The rows as a Markdown table, with the spread over rounds beside each value."""
    lines = [
        "| scenario | variant | metric | value | unit | spread | x floor |",
        "|---|---|---|---:|---|---:|---:|",
    ]
    for m, row in zip(measurements, rows(measurements), strict=True):
        ratio = "" if row["ratio_to_floor"] is None else f"{row['ratio_to_floor']:.2f}"
        lines.append(
            f"| {m.scenario} | {m.variant} | {m.metric} | {row['value']:,} | {m.unit} "
            f"| ±{m.spread * 50:.0f}% | {ratio} |"
        )
    return "\n".join(lines)


def write(measurements: list[Measurement], directory: Path, run: dict[str, Any]) -> Path:
    """Write ``latest.json`` (the rows) and ``run.json`` (machine, load, rounds)."""
    directory.mkdir(parents=True, exist_ok=True)
    latest = directory / "latest.json"
    latest.write_text(json.dumps(rows(measurements), indent=1) + "\n")
    spreads = [
        {
            "scenario": m.scenario,
            "variant": m.variant,
            "metric": m.metric,
            "samples": [_rounded(s) for s in m.samples],
        }
        for m in measurements
    ]
    (directory / "run.json").write_text(json.dumps({**run, "rounds": spreads}, indent=1) + "\n")
    return latest


def chart(measurements: list[Measurement], path: Path) -> Path | None:
    """Draw the ratios to the floor as grouped bars; ``None`` when matplotlib is missing."""
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        return None
    matplotlib.use("Agg")
    pyplot = importlib.import_module("matplotlib.pyplot")
    data = [
        (f"{r['scenario']}\n{r['metric']}", r["variant"], r["ratio_to_floor"])
        for r in rows(measurements)
        if r["ratio_to_floor"] is not None and r["unit"] != "MiB"
    ]
    groups = list(dict.fromkeys(group for group, _, _ in data))
    variants = list(dict.fromkeys(variant for _, variant, _ in data))
    width = 0.8 / max(len(variants), 1)
    figure, axes = pyplot.subplots(figsize=(max(8, 1.4 * len(groups)), 5))
    for index, variant in enumerate(variants):
        values = {group: ratio for group, name, ratio in data if name == variant}
        positions = [g + index * width for g, group in enumerate(groups) if group in values]
        axes.bar(positions, [values[g] for g in groups if g in values], width, label=variant)
    axes.axhline(1.0, color="black", linewidth=0.8)
    axes.set_yscale("log")
    axes.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))])
    axes.set_xticklabels(groups, fontsize=7)
    axes.set_ylabel("time / floor time (log; lower is better)")
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path


def _find(rows: list[dict[str, Any]], scenario: str, variant: str, metric: str) -> Any:
    for row in rows:
        if (row["scenario"], row["variant"], row["metric"]) == (scenario, variant, metric):
            return row
    return None


def _check(label: str, value: float | None, limit: float) -> str:
    if value is None:
        return f"{label}: not measured"
    verdict = "met" if value <= limit else f"missed by {(value / limit - 1) * 100:.0f}%"
    return f"{label}: {value:.2f} (target <= {limit:.2f}) {verdict}"


def targets(measurements: list[Measurement]) -> list[str]:
    """The issue's targets checked against this run's rows, one line each."""
    table = rows(measurements)
    lines = []

    def ratio(scenario: str, variant: str, metric: str) -> float | None:
        row = _find(table, scenario, variant, metric)
        return None if row is None else row["ratio_to_floor"]

    for scenario, metric in (
        ("unary_small", "p50_latency"),
        ("unary_small", "p99_latency"),
        ("unary_concurrent", "throughput"),
    ):
        ours = ratio(scenario, "transport", metric)
        lines.append(_check(f"{scenario} {metric} transport x floor", ours, 1.05))
        theirs = ratio(scenario, "protobuf", metric)
        if ours is not None and theirs is not None:
            lines.append(_check(f"{scenario} {metric} transport / protobuf", ours / theirs, 1.0))
    lines += _stream_targets(table)
    lines += _scale_targets(measurements)
    for row in table:
        if (
            row["scenario"] == "ndarray"
            and row["variant"] == "transport"
            and row["unit"] == "MiB/s"
        ):
            lines.append(
                _check(f"ndarray {row['metric']} transport x floor", row["ratio_to_floor"], 1.25)
            )
    fenced = _find(table, "session_infer", "transport-fenced", "p50_latency")
    unfenced = _find(table, "session_infer", "transport-unfenced", "p50_latency")
    if fenced and unfenced:
        lines.append(
            _check("session_infer p50 fenced / unfenced", fenced["value"] / unfenced["value"], 1.10)
        )
    aio_floor = _find(table, "session_infer", ASYNC_FLOOR, "p50_latency")
    for variant in ("transport-fenced", "transport-fenced-sync"):
        row = _find(table, "session_infer", variant, "p50_latency")
        if row is None:
            continue
        lines.append(_check(f"session_infer p50 {variant} x floor", row["ratio_to_floor"], 1.10))
        if aio_floor and aio_floor["value"]:
            lines.append(
                _check(
                    f"session_infer p50 {variant} x {ASYNC_FLOOR} (the server's own kind)",
                    row["value"] / aio_floor["value"],
                    1.10,
                )
            )
    for row in table:
        if row["variant"] != "grpclib-json" or row["unit"] == "MiB":
            continue
        ours = ratio(row["scenario"], "transport", row["metric"])
        if ours is not None and row["ratio_to_floor"]:
            lines.append(
                _check(
                    f"{row['scenario']} {row['metric']} transport / grpclib-json",
                    ours / row["ratio_to_floor"],
                    1.0,
                )
            )
    return lines


_STREAM_METRICS = ("throughput", "client_stream_throughput", "bidi_throughput")
# Short streams and a trickle: no slower than the floor.
_LATENCIES = (
    ("stream_short", "p50_latency_3"),
    ("stream_short", "p50_latency_20"),
    ("stream_trickle", "p50_delivery"),
)


ASYNC_FLOOR = "floor-asyncio"


def _own_floor(
    table: list[dict[str, Any]], scenario: str, variant: str, metric: str
) -> tuple[str, float | None]:
    """The ratio of ``variant`` to the floor of its kind: asyncio variants to the grpc.aio floor."""
    row = _find(table, scenario, variant, metric)
    floor = _find(table, scenario, ASYNC_FLOOR, metric) if "asyncio" in variant else None
    if row is None or floor is None or not row["value"] or not floor["value"]:
        return "floor", None if row is None else row["ratio_to_floor"]
    if row["unit"] in _RATES:
        return ASYNC_FLOOR, round(floor["value"] / row["value"], 3)
    return ASYNC_FLOOR, round(row["value"] / floor["value"], 3)


def _stream_targets(table: list[dict[str, Any]]) -> list[str]:
    """Streams: at least 5x grpclib-json and never below the floor; short ones and a trickle
    within 1.05x of the floor."""
    lines = []
    for variant in ("transport", "transport-asyncio"):
        for metric in _STREAM_METRICS:
            ours = _find(table, "stream_small", variant, metric)
            theirs = _find(table, "stream_small", "grpclib-json", metric)
            if ours is None:
                continue
            if theirs is not None and ours["value"]:
                lines.append(
                    _check(
                        f"stream_small {metric} grpclib-json / {variant} (5x: <= 0.20)",
                        theirs["value"] / ours["value"],
                        0.20,
                    )
                )
            floor, ratio = _own_floor(table, "stream_small", variant, metric)
            lines.append(_check(f"stream_small {metric} {variant} x {floor}", ratio, 1.0))
        for scenario, metric in _LATENCIES:
            if _find(table, scenario, variant, metric) is not None:
                floor, ratio = _own_floor(table, scenario, variant, metric)
                lines.append(_check(f"{scenario} {metric} {variant} x {floor}", ratio, 1.05))
    for metric in ("p50_latency", "p99_latency"):
        floor, ratio = _own_floor(table, "unary_small", "transport-asyncio", metric)
        if floor == ASYNC_FLOOR:
            lines.append(_check(f"unary_small {metric} transport-asyncio x {floor}", ratio, 1.05))
    return lines


def _scale_cells(measurements: list[Measurement], variant: str, prefix: str) -> dict[str, float]:
    return {
        m.metric.removeprefix(prefix): m.value
        for m in measurements
        if m.scenario == "scale" and m.variant == variant and m.metric.startswith(prefix)
    }


def _load(cell: str) -> int:
    """The bytes in flight of a scale cell such as ``100x64KiB``."""
    in_flight, _, size = cell.partition("x")
    unit = 1024 * 1024 if size.endswith("MiB") else 1024
    return int(in_flight) * int(size[:-3]) * unit


def _scale_targets(measurements: list[Measurement]) -> list[str]:
    """Server RSS grows no more than the floor's from the lightest cell to the heaviest."""
    floor = _scale_cells(measurements, FLOOR, "server_peak_rss_")
    if len(floor) < 2:
        return []
    lightest, heaviest = min(floor, key=_load), max(floor, key=_load)
    growth = floor[heaviest] - floor[lightest]
    lines = []
    for variant in sorted({m.variant for m in measurements if m.scenario == "scale"} - {FLOOR}):
        cells = _scale_cells(measurements, variant, "server_peak_rss_")
        if lightest in cells and heaviest in cells and growth > 0:
            ours = cells[heaviest] - cells[lightest]
            lines.append(
                _check(
                    f"scale server RSS growth {lightest} -> {heaviest} {variant} / floor",
                    ours / growth,
                    1.0,
                )
            )
    return lines


def scale_chart(measurements: list[Measurement], path: Path) -> Path | None:
    """Draw the scale scenario: MiB/s and server peak RSS against calls in flight, per size."""
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        return None
    cells = [m for m in measurements if m.scenario == "scale"]
    if not cells:
        return None
    matplotlib.use("Agg")
    pyplot = importlib.import_module("matplotlib.pyplot")
    sizes = list(dict.fromkeys(m.metric.rpartition("x")[2] for m in cells))
    figure, axes = pyplot.subplots(2, len(sizes), figsize=(4.5 * len(sizes), 7), squeeze=False)
    for column, size in enumerate(sizes):
        for row, (prefix, unit) in enumerate(
            (("throughput_", "MiB/s"), ("server_peak_rss_", "MiB"))
        ):
            ax = axes[row][column]
            for variant in dict.fromkeys(m.variant for m in cells):
                points = sorted(
                    (int(m.metric.removeprefix(prefix).partition("x")[0]), m.value)
                    for m in cells
                    if m.variant == variant
                    and m.metric.startswith(prefix)
                    and m.metric.endswith(f"x{size}")
                )
                ax.plot([x for x, _ in points], [y for _, y in points], marker="o", label=variant)
            ax.set_xscale("log")
            ax.set_title(f"{size}: {'throughput' if row == 0 else 'server peak RSS'}", fontsize=9)
            ax.set_xlabel("calls in flight")
            ax.set_ylabel(unit)
            ax.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path
