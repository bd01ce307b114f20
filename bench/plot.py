"""PNG plots of a scenario: stacked panels of lines over time, or distributions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

Number = float | int | None


@dataclass
class Lines:
    """Lines sharing an x axis; `spans` shades labelled x ranges (phases)."""

    ylabel: str
    x: Sequence[float]
    ys: Mapping[str, Sequence[Number]]
    xlabel: str = "seconds"
    logy: bool = False
    hlines: Mapping[str, float] = field(default_factory=dict)
    spans: Sequence[tuple[float, float, str]] = ()
    step: bool = False


@dataclass
class Boxes:
    """Distributions side by side (box = quartiles, whiskers = p1..p99)."""

    ylabel: str
    groups: Mapping[str, Sequence[float]]
    logy: bool = False
    hlines: Mapping[str, float] = field(default_factory=dict)


@dataclass
class Bars:
    """One value per label, as horizontal bars."""

    xlabel: str
    values: Mapping[str, float]
    logx: bool = False


Panel = Lines | Boxes | Bars


def plot(path: Path, title: str, panels: Sequence[Panel]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.2 * len(panels)), squeeze=False)
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        if isinstance(panel, Lines):
            _lines(ax, panel)
        elif isinstance(panel, Bars):
            _bars(ax, panel)
        else:
            _boxes(ax, panel)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _lines(ax: Axes, panel: Lines) -> None:
    for label, ys in panel.ys.items():
        points = [(x, y) for x, y in zip(panel.x, ys, strict=False) if y is not None]
        if not points:
            continue
        xs, vs = zip(*points, strict=True)
        if panel.step:
            ax.step(xs, vs, where="post", label=label, linewidth=1.2)
        else:
            ax.plot(xs, vs, label=label, linewidth=1.2)
    _decorate(ax, panel.ylabel, panel.logy, panel.hlines)
    for i, (start, end, label) in enumerate(panel.spans):
        ax.axvspan(start, end, alpha=0.08 if i % 2 else 0.16, color="tab:gray")
        ax.text(start, 1.0, label, transform=ax.get_xaxis_transform(), fontsize=7, va="bottom")
    ax.set_xlabel(panel.xlabel)
    ax.legend(fontsize=7, loc="upper left", ncols=4)


def _boxes(ax: Axes, panel: Boxes) -> None:
    labels = [label for label, values in panel.groups.items() if values]
    data = [list(panel.groups[label]) for label in labels]
    if data:
        ax.boxplot(data, tick_labels=labels, whis=(1, 99), showfliers=False)
    _decorate(ax, panel.ylabel, panel.logy, panel.hlines)
    ax.tick_params(axis="x", labelsize=7)
    if panel.hlines:
        ax.legend(fontsize=7, loc="upper left")


def _bars(ax: Axes, panel: Bars) -> None:
    labels = list(panel.values)
    ax.barh(labels, [panel.values[label] for label in labels], color="tab:blue")
    ax.invert_yaxis()
    ax.set_xlabel(panel.xlabel)
    if panel.logx:
        ax.set_xscale("log")
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(alpha=0.3, axis="x")


def _decorate(ax: Axes, ylabel: str, logy: bool, hlines: Mapping[str, float]) -> None:
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    for label, value in hlines.items():
        ax.axhline(value, linestyle="--", linewidth=1, color="tab:red", label=label)
    ax.grid(alpha=0.3)
