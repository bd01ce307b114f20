"""Figures against their targets, the result files, the machine they were measured on, and the
summary table."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import psutil

Op = Literal["<=", ">=", "<", ">", "=="]
_SYMBOL = {"<=": "≤", ">=": "≥", "<": "<", ">": ">", "==": "="}


@dataclass(frozen=True)
class Target:
    op: Op
    value: float
    unit: str = ""

    def holds(self, measured: float) -> bool:
        if math.isnan(measured):
            return False
        return {
            "<=": measured <= self.value,
            ">=": measured >= self.value,
            "<": measured < self.value,
            ">": measured > self.value,
            "==": measured == self.value,
        }[self.op]

    def label(self) -> str:
        return f"{_SYMBOL[self.op]} {_number(self.value)}{_unit(self.unit)}"


@dataclass
class Figure:
    """One measured figure; `target` None means informational (no pass/fail)."""

    name: str
    measured: float
    unit: str = ""
    target: Target | None = None
    note: str = ""
    met: bool | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.measured = float(self.measured)
        if self.target is not None:
            self.met = self.target.holds(self.measured)

    def measured_label(self) -> str:
        return f"{_number(self.measured)}{_unit(self.unit)}"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_label"] = self.target.label() if self.target else None
        data["measured"] = None if math.isnan(self.measured) else self.measured
        return data


@dataclass
class ScenarioResult:
    name: str
    description: str
    figures: list[Figure] = field(default_factory=list)
    #: Everything else worth keeping: configuration, breakdowns, profiles' top frames.
    details: dict[str, Any] = field(default_factory=dict)
    #: Time series for the plot (and for anyone re-plotting from the JSON).
    series: dict[str, Any] = field(default_factory=dict)
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    duration_s: float = 0.0

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure


def machine_info() -> dict[str, Any]:
    """What the figures were measured on (everything ran on this one machine)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git": _git_revision(),
    }


def _git_revision() -> str | None:
    """`git describe --dirty` of the tree measured (`BENCH_REVISION` names a copy of one)."""
    if os.environ.get("BENCH_REVISION"):
        return os.environ["BENCH_REVISION"]
    try:
        rev = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev or None


def write_result(
    out_dir: Path, result: ScenarioResult, *, scale: str, machine: dict[str, Any]
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{result.name}.json"
    body = {
        "scenario": result.name,
        "description": result.description,
        "scale": scale,
        "machine": machine,
        "started_at": result.started_at,
        "duration_s": round(result.duration_s, 2),
        "figures": [f.as_dict() for f in result.figures],
        "details": result.details,
        "series": result.series,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(body, indent=1, default=_json_default, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def clean_for_json(value: Any) -> Any:
    """NaN/inf → None, recursively (JSON has no NaN)."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {k: clean_for_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_for_json(v) for v in value]
    return value


def load_results(out_dir: Path, names: list[str]) -> tuple[list[ScenarioResult], dict[str, Any]]:
    """The results stored in `out_dir` (in `names` order) and the machine of the latest one, so
    that the summary covers every scenario even when only some were run again."""
    results: list[ScenarioResult] = []
    machine: dict[str, Any] = {}
    latest = ""
    for name in names:
        path = out_dir / f"{name}.json"
        if not path.exists():
            continue
        body = json.loads(path.read_text())
        result = ScenarioResult(name, body["description"], started_at=body["started_at"])
        for data in body["figures"]:
            target = Target(**data["target"]) if data.get("target") else None
            measured = data["measured"] if data["measured"] is not None else float("nan")
            result.add(Figure(data["name"], measured, data["unit"], target, data["note"]))
        results.append(result)
        if body["started_at"] > latest:
            latest, machine = body["started_at"], body["machine"]
    return results, machine


def summary_table(results: list[ScenarioResult]) -> str:
    """A Markdown table: scenario, figure, target, measured, met?"""
    lines = [
        "| scenario | figure | target | measured | met? |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        for figure in result.figures:
            target = figure.target.label() if figure.target else "-"
            met = {True: "yes", False: "**no**", None: "-"}[figure.met]
            note = f" ({figure.note})" if figure.note else ""
            lines.append(
                f"| {result.name} | {figure.name}{note} | {target} | "
                f"{figure.measured_label()} | {met} |"
            )
    return "\n".join(lines)


def _number(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if value == int(value):
        return f"{int(value):,}".replace(",", " ")
    if abs(value) >= 100:
        return f"{value:,.0f}".replace(",", " ")
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _unit(unit: str) -> str:
    if not unit:
        return ""
    return unit if unit in ("%", "x", "/s") else f" {unit}"
