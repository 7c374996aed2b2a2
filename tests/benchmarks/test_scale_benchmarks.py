"""The scale benchmarks' smoke runs: a tiny sweep and a tiny day, whose figures must add up (real processes, the real
database, the sandbox counting every refresh), so the full runs the README quotes are measured by a working harness."""

from __future__ import annotations

import pytest

from benchmarks import day_in_the_life, refresh_sweep


@pytest.mark.slow
def test_a_smoke_sweep_renews_every_token_once_at_the_limits_pace(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = refresh_sweep.main(["--smoke", "--database-url", database_url])
    assert [(r["tokens"], r["processes"]) for r in runs] == [(200, 1), (200, 3)]
    for run in runs:
        assert refresh_sweep.check(run) == [], run
        assert (run["renewed"], run["refresh_calls"], run["renewed_twice"], run["missed"]) == (200, 200, 0, 0)
        assert sum(run["per_process"]) == 200, "the refreshers' own counts agree with the sandbox's"
        assert run["rate_limited"] == 0 and run["rejected"] == 0
        # The shared budget spaces the calls at 98% of the limit: renewing all cannot beat the bound.
        assert run["ratio_to_bound"] >= 0.95, run["ratio_to_bound"]
    assert len([n for n in runs[1]["per_process"] if n]) >= 2, "refreshers side by side shared the work"
    printed = capsys.readouterr().out
    assert printed.count("every token renewed once, none late") == 2
    table = [line.split() for line in printed.splitlines() if line.startswith("    200")]
    assert [row[:2] + row[5:10] for row in table] == [["200", p, "200", "0", "0", "0", "0"] for p in ("1", "3")], table


@pytest.mark.slow
def test_a_smoke_day_refreshes_ahead_only_the_active_under_the_aware_policy(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    aware, blind = day_in_the_life.main(["--smoke", "--database-url", database_url])
    assert (aware["policy"], blind["policy"]) == ("aware", "blind")
    for day in (aware, blind):
        assert day["commands"] + day["commands_unsent"] == day["active"] * 2 and day["commands_failed"] == 0, day
        assert day["commands"] > day["active"], "most of the day's commands were sent"
        assert day["refresh_calls"] == day["refresh_calls_active"] + day["refresh_calls_inactive"]
        assert day["rejected"] == 0 and day["rate_limited"] == 0
        assert day["commands_waited"] <= day["commands"] and day["people_waited"] <= day["active"]
        assert day["active_renewed"] == day["active"], "every active person's token came due in the day and was renewed"
        assert 23.9 <= day["sandbox_hours"] <= 26, "the commands kept to the day (an hour is 1.25 s here)"
    assert aware["refresh_calls_inactive"] == 0, "nobody inactive was refreshed ahead"
    assert aware["people_renewed"] == aware["active"]
    assert blind["people_renewed"] == blind["people"], "the blind policy renewed every token that came due"
    assert blind["refresh_calls"] > 3 * aware["refresh_calls"]
    assert "blind / aware refresh calls" in capsys.readouterr().out
