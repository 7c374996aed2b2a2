"""The size benchmark's smoke run: a few thousand people, figures that hang together (not a speed test)."""

from __future__ import annotations

from benchmarks.store_size import main


def test_the_smoke_run_measures_every_operation_at_every_size(capsys) -> None:  # type: ignore[no-untyped-def]
    figures = main(["--smoke"])
    sizes, results = figures["sizes"], figures["results"]
    assert sizes == [1000, 2000] and list(results) == ["SQLite"]
    operations = {"authorize", "find_installation", "slack_sdk find_installation"}
    for size in sizes:
        measured = results["SQLite"][size]
        assert measured["seed_seconds"] > 0
        assert operations <= set(measured)
        for name in operations:
            assert len(measured[name]) == 2  # two runs
            for p50, p99, cpu_p50, cpu_p99 in measured[name]:
                assert 0 < p50 <= p99 and 0 < cpu_p50 <= cpu_p99
                assert cpu_p50 <= p50 * 1.05 + 20  # a call's CPU time fits in its wall time
    assert set(figures["ratios"]) == {f"SQLite {name} {kind}" for name in operations for kind in ("p99", "CPU p99")}
    assert all(ratio > 0 for ratio in figures["ratios"].values())
    printed = capsys.readouterr().out
    assert "SQLite: seeded 1,000 people" in printed and "SQLite: seeded 2,000 people" in printed and "target 2x" in printed
