"""Markdown tables from a results file: median (min-max) over repetitions, ratios vs Flower/bare."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

Run = dict[str, Any]


def _values(runs: list[Run], key: str) -> list[float]:
    return [r[key] for r in runs if isinstance(r.get(key), int | float)]


def median(runs: list[Run], key: str) -> float | None:
    values = _values(runs, key)
    return statistics.median(values) if values else None


def _num(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def cell(runs: list[Run], key: str, digits: int = 0) -> str:
    values = _values(runs, key)
    if not values:
        return "n/a"
    mid = _num(statistics.median(values), digits)
    if len(values) == 1:
        return mid
    return f"{mid} ({_num(min(values), digits)}-{_num(max(values), digits)})"


def ratio(runs: list[Run], base: list[Run] | None, key: str = "rate") -> str:
    mine, theirs = median(runs, key), median(base, key) if base else None
    if not mine or not theirs:
        return "n/a"
    return f"{mine / theirs:.2f}x"


COLUMNS: dict[str, list[tuple[str, str, int]]] = {
    "drain": [
        ("ingest ev/s", "rate", 0),
        ("CPU µs/event", "cpu_per_event_us", 0),
        ("+DB µs/event", "cpu_with_db_per_event_us", 0),
        ("cores", "cores", 2),
        ("peak RSS MB", "peak_rss_mb", 0),
        ("loss %", "loss_pct", 1),
        ("foreign CPU %", "foreign_cpu_pct", 0),
    ],
    "burst": [
        ("loss %", "loss_pct", 1),
        ("applied ev/s", "rate", 0),
        ("publish ev/s", "publish_rate", 0),
        ("Redis cut-offs", "redis_disconnects", 0),
        ("lag p50 s", "lag_p50", 3),
        ("lag p99 s", "lag_p99", 3),
        ("peak RSS MB", "peak_rss_mb", 0),
        ("foreign CPU %", "foreign_cpu_pct", 0),
    ],
    "sustained": [
        ("applied ev/s", "rate", 0),
        ("loss %", "loss_pct", 1),
        ("lag p50 s", "lag_p50", 3),
        ("lag p99 s", "lag_p99", 3),
        ("tail s", "tail_s", 2),
        ("max Redis backlog MB", "max_backlog_mb", 1),
        ("cores", "cores", 2),
        ("+DB cores", "db_cores", 2),
        ("peak RSS MB", "peak_rss_mb", 0),
        ("worst poll s", "max_poll_latency_s", 2),
        ("foreign CPU %", "foreign_cpu_pct", 0),
    ],
    "history": [
        ("fill s", "fill_seconds", 1),
        ("peak RSS MB", "peak_rss_mb", 0),
        ("applied ev/s", "rate", 0),
        ("loss %", "loss_pct", 1),
        ("lag p50 s", "lag_p50", 3),
        ("lag p99 s", "lag_p99", 3),
        ("CPU µs/event", "cpu_per_event_us", 0),
        ("foreign CPU %", "foreign_cpu_pct", 0),
    ],
}


def tables(runs: list[Run]) -> str:
    out = []
    by_mode: dict[str, dict[str, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        if "error" in run:
            continue
        key = run["consumer"]
        if run["mode"] == "history":
            key = f"{run['consumer']} @ {run['history_rows']:,} rows"
        by_mode[run["mode"]][key].append(run)
    for mode, groups in by_mode.items():
        columns = COLUMNS[mode]
        flower = groups.get("flower") or groups.get("flower+pin")
        bare = groups.get("bare")
        # Rates of lossy bursts are not capacities: compare their loss instead.
        with_ratios = mode in ("drain", "sustained")
        events = sorted({r["expected"] for g in groups.values() for r in g})
        out.append(f"\n### {mode} ({', '.join(f'{e:,}' for e in events)} task events)\n")
        header = ["consumer", *(name for name, _, _ in columns)]
        if with_ratios:
            header += ["÷ Flower", "÷ bare"]
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "---|" * len(header))
        for name, group in groups.items():
            row = [f"{name} (n={len(group)})"]
            for _, key, digits in columns:
                row.append(cell(group, key, digits))
            if with_ratios:
                row += [ratio(group, flower), ratio(group, bare)]
            out.append("| " + " | ".join(row) + " |")
    errors = [r for r in runs if "error" in r]
    if errors:
        out.append("\nFailed runs:")
        out += [f"- rep {r['rep']} {r['mode']} {r['consumer']}: {r['error']}" for r in errors]
    return "\n".join(out) + "\n"


def summary(data: dict[str, Any]) -> str:
    """The header a reader needs to trust the tables: box, versions, calibration, skips."""
    box = data.get("box", {})
    project = data["versions"].get("project_venv", {})
    flower = data["versions"].get("flower_venv", {})
    refs = ", ".join(str(c["cpu_ref_ms"]) for c in data.get("calibration", []))
    lines = [
        f"## Ingest benchmark {data['started_at']}",
        "",
        f"- box: {box.get('cpus')} CPUs ({box.get('cpu_model')}), kernel {box.get('kernel')}; "
        f"Redis {data['versions'].get('redis_server')}, Python {data['versions'].get('python')}",
        f"- project venv: {', '.join(f'{k} {v}' for k, v in sorted(project.items()))}",
        f"- flower venv: {', '.join(f'{k} {v}' for k, v in sorted(flower.items()))}",
        f"- project commit: {data['versions'].get('project_commit')}"
        + (" (with uncommitted changes)" if data["versions"].get("project_uncommitted") else ""),
        f"- cpu_ref_ms per repetition: {refs}",
        "- cells: median (min-max) over repetitions; ratios: median rate ÷ median rate",
    ]
    lines += [f"- skipped {s}" for s in data.get("skipped", [])]
    return "\n".join(lines) + "\n" + tables(data["runs"])
