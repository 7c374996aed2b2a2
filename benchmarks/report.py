"""What every benchmark prints and draws: figures over several runs as ranges, and a PNG plot under docs/.

A single run on this shared 2-core machine can swing by a factor of two, so each benchmark repeats itself and
reports the median with the range; plots are written with matplotlib's Agg backend (no screen needed).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["DOCS", "percentile", "plot_axes", "spread"]

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which the given fraction of values fall (nearest rank); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def spread(values: Sequence[float], fmt: str = "{:.1f}") -> str:
    """'median (min-max, n runs)' for repeated measurements, or the one value for a single run."""
    if not values:
        return "-"
    if len(values) == 1:
        return fmt.format(values[0])
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{fmt.format(mid)} ({fmt.format(low)}-{fmt.format(high)}, {len(values)} runs)"


def plot_axes(title: str, *, xlabel: str, ylabel: str) -> tuple[Any, Any]:
    """A new figure and its axes, titled and labelled; save with figure.savefig(DOCS / 'name.png')."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(8, 4.5), dpi=100)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    DOCS.mkdir(parents=True, exist_ok=True)
    return figure, axes
