"""py-spy profiles of running services: a flame graph (SVG) and the top frames (from raw stacks).

py-spy samples without pausing the target (`--nonblocking`) and leaves out idle threads, so the
sample count over `duration x rate` is roughly the share of time the process was on a CPU.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::\d+)?\)$")


def py_spy_binary() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    if candidate.is_file():
        return str(candidate)
    return shutil.which("py-spy")


async def profile_processes(
    pids: dict[str, int], duration_s: float, out_dir: Path, *, rate: int = 100, prefix: str = ""
) -> dict[str, Any]:
    """Record every process in `pids` at once for `duration_s`; writes `<prefix><name>.svg`."""
    binary = py_spy_binary()
    if binary is None:
        return {"error": "py-spy not installed (uv sync --group bench)"}
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    runs: list[tuple[str, str, Path, asyncio.subprocess.Process]] = []
    for name, pid in pids.items():
        for fmt, suffix in (("flamegraph", ".svg"), ("raw", ".stacks.txt")):
            path = out_dir / f"{prefix}{name}{suffix}"
            proc = await asyncio.create_subprocess_exec(
                binary,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(max(1, round(duration_s))),
                "--rate",
                str(rate),
                "--nonblocking",
                "--format",
                fmt,
                "--output",
                str(path),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            runs.append((name, fmt, path, proc))
    result: dict[str, Any] = {}
    for name, fmt, path, proc in runs:
        output, _ = await proc.communicate()
        entry = result.setdefault(name, {})
        if proc.returncode != 0:
            entry[f"{fmt}_error"] = output.decode(errors="replace")[-500:]
            continue
        if fmt == "flamegraph":
            entry["flamegraph"] = path.name
        else:
            entry.update(summarise_stacks(path.read_text(), duration_s * rate))
            path.unlink()  # the SVG holds the same data; the summary is in the result
    return result


def _frame(raw: str) -> str:
    match = _FRAME.match(raw.strip())
    if match is None:
        return raw.strip()
    file = "/".join(Path(match["file"]).parts[-2:])
    return f"{match['func']} ({file})"


def summarise_stacks(text: str, expected_samples: float, top: int = 25) -> dict[str, Any]:
    """Top frames of py-spy's collapsed stacks: by own time and including callees, in %."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f]
        # The thread name comes first in py-spy's raw output; frames follow outermost first.
        frames = [f for f in frames if not f.startswith("thread (")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if total == 0:
        return {"samples": 0}

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[frame, round(100.0 * n / total, 1)] for frame, n in counter.most_common(top)]

    return {
        "samples": total,
        "on_cpu_share": round(min(1.0, total / expected_samples), 3) if expected_samples else None,
        "top_own_percent": share(own),
        "top_inclusive_percent": share(inclusive),
    }
