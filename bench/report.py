"""Measurements: a table for people, one JSON line each for machines, and bench/results/latest.json."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


@dataclass
class Measurement:
    name: str
    value: float
    unit: str
    # "<= 1.1" or ">= 5": compared with `ratio` when there is a floor or a reference, else with `value`.
    target: str | None = None
    floor: float | None = None
    ratio: float | None = None
    note: str = ""
    detail: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        op, threshold = self.target.split()
        measured = self.ratio if self.ratio is not None else self.value
        return measured <= float(threshold) if op == "<=" else measured >= float(threshold)

    def as_json(self) -> dict:
        data = asdict(self)
        data["pass"] = self.passed
        return data


def ratio(value: float, floor: float | None) -> float | None:
    return value / floor if floor else None


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    docker_version = ""
    with contextlib.suppress(Exception):  # an unreachable engine is described as "", never an error
        import docker
        docker_version = docker.from_env().version().get("Version", "")
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "docker": docker_version}


def _fmt(number: float | None) -> str:
    if number is None:
        return "-"
    if number == 0 or abs(number) >= 100:
        return f"{number:,.0f}"
    if abs(number) >= 1:
        return f"{number:.2f}"
    return f"{number:.4f}"


class Report:
    def __init__(self) -> None:
        self.measurements: list[Measurement] = []
        self.notes: list[str] = []
        self.started = time.time()

    def add(self, measurement: Measurement) -> None:
        self.measurements.append(measurement)
        print(json.dumps(measurement.as_json(), sort_keys=True), flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(text, flush=True)

    def table(self) -> str:
        rows = [("measurement", "value", "unit", "floor/ref", "ratio", "target", "result")]
        for m in self.measurements:
            verdict = {True: "pass", False: "FAIL", None: ""}[m.passed]
            rows.append((m.name, _fmt(m.value), m.unit, _fmt(m.floor), _fmt(m.ratio), m.target or "", verdict))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) if i in (0, 2, 5, 6) else cell.rjust(w)
                           for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(lines + [f"note: {n}" for n in self.notes])

    def write(self, path: Path = RESULTS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"machine": machine(), "started": self.started, "seconds": round(time.time() - self.started, 1),
                "measurements": [m.as_json() for m in self.measurements], "notes": self.notes}
        path.write_text(json.dumps(data, indent=1) + "\n")
