"""Reliability figures: counts the reliability suite (tests/integration/reliability) records while it runs,
printed as a table at the end of the pytest run and written to a JSON file, so that docs/reliability.md can
quote each claim with the run that produced it.

    figures.add("decoys never written", "bytes changed on decoys", value=0, total=20, unit="kinds")

A figure is a fact measured by a test that also asserts it: recording never replaces the assertion. Figures
of the same (claim, measure) add up over tests (value and total are summed), e.g. one test per crash point
each adds value=1 (converged), total=1.
"""

from __future__ import annotations

import json
import os
import threading
import time

_lock = threading.Lock()
_figures = {}   # (claim, measure) -> {"value": n, "total": n, "unit": str, "tests": n}

DEFAULT_PATH = os.path.join(os.environ.get("LW_CACHE", "/var/cache/lightwhale-persistence"),
                            "reliability", "figures.json")


def add(claim, measure, value, total=None, unit=""):
    """Add one observation. value: what was counted (e.g. converged runs, bytes changed); total: out of
    how many (None when it is a plain sum, e.g. bytes)."""
    with _lock:
        _add(claim, measure, value, total, unit, 1)


def merge(rows):
    """Add the rows another process recorded (a pytest-xdist worker's `recorded()`) to this one's."""
    with _lock:
        for row in rows:
            _add(row["claim"], row["measure"], row["value"], row["total"], row["unit"], row["tests"])


def _add(claim, measure, value, total, unit, tests):
    fig = _figures.setdefault((claim, measure), {"value": 0, "total": None, "unit": unit, "tests": 0})
    fig["value"] += value
    if total is not None:
        fig["total"] = (fig["total"] or 0) + total
    fig["unit"] = unit or fig["unit"]
    fig["tests"] += tests


def recorded():
    with _lock:
        return [dict(claim=c, measure=m, **f) for (c, m), f in sorted(_figures.items())]


def render(rows):
    lines = ["reliability figures (tests/integration/reliability; docs/reliability.md)"]
    for row in rows:
        value = f"{row['value']}" if row["total"] is None else f"{row['value']} / {row['total']}"
        unit = f" {row['unit']}" if row["unit"] else ""
        lines.append(f"  {row['claim']}: {row['measure']}: {value}{unit}  ({row['tests']} tests)")
    return lines


def write(path=None):
    """Write the figures of this run as JSON (path: $LW_RELIABILITY_FIGURES or DEFAULT_PATH). Returns the path,
    or None when nothing was recorded."""
    rows = recorded()
    if not rows:
        return None
    path = path or os.environ.get("LW_RELIABILITY_FIGURES") or DEFAULT_PATH
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "figures": rows}, out, indent=1)
    os.replace(tmp, path)
    return path
