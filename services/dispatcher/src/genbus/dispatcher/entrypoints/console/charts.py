"""Small inline SVG charts: no JavaScript, no images, drawn on the server."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape


def bars(
    series: Sequence[tuple[int, int]],
    *,
    width: int = 240,
    height: int = 48,
    label: str = "",
) -> Markup:
    """One bar pair per minute: completed (green) stacked under failed (red), oldest left."""
    n = max(len(series), 1)
    top = max((ok + bad for ok, bad in series), default=0) or 1
    step = width / n
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(label)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">',
        f'<rect x="0" y="0" width="{width}" height="{height}" class="chart-bg"/>',
    ]
    for i, (ok, bad) in enumerate(series):
        x = i * step + 1
        ok_h = ok / top * (height - 2)
        bad_h = bad / top * (height - 2)
        w = max(step - 2, 1)
        if ok:
            parts.append(
                f'<rect class="ok" x="{x:.1f}" y="{height - ok_h:.1f}" width="{w:.1f}" '
                f'height="{ok_h:.1f}"><title>{ok} completed</title></rect>'
            )
        if bad:
            parts.append(
                f'<rect class="bad" x="{x:.1f}" y="{height - ok_h - bad_h:.1f}" '
                f'width="{w:.1f}" height="{bad_h:.1f}"><title>{bad} failed</title></rect>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
