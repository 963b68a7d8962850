"""The `toolgym` command line: help that teaches, and the quickstart's results table."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from toolgym.cli import main


def test_help_lists_the_commands_and_the_environments(capsys):
    assert main([]) == 0
    text = capsys.readouterr().out
    for word in ("quickstart", "envs", "Math-v0", "FunctionCall-v0", "Search-v0", "examples:"):
        assert word in text


def test_console_script_is_installed_and_answers_help():
    result = subprocess.run(
        [sys.executable, "-m", "toolgym.cli", "quickstart", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "--episodes" in result.stdout


def test_quickstart_oracle_scores_one_on_every_procedural_world(tmp_path):
    out = tmp_path / "rows.json"

    assert main(["quickstart", "--episodes", "6", "--agents", "oracle", "baseline", "--json", str(out)]) == 0

    rows = json.loads(out.read_text())
    assert {(r["env"], r["agent"]) for r in rows} == {
        (env, agent) for env in ("Math-v0", "FunctionCall-v0", "Search-v0") for agent in ("oracle", "baseline")
    }
    assert all(r["accuracy"] == 1.0 for r in rows if r["agent"] == "oracle")
    assert all(r["episodes"] == 6 for r in rows)


def test_quickstart_reports_the_interval_toolgym_eval_reports(tmp_path):
    """Same episodes, same interval: the quickstart uses evals.metrics (Wilson for 0/1 rewards)."""
    from toolgym.evals.metrics import wilson_interval

    out = tmp_path / "rows.json"
    assert (
        main(["quickstart", "--episodes", "8", "--agents", "baseline", "--envs", "Search-v0", "--json", str(out)]) == 0
    )

    [row] = json.loads(out.read_text())
    expected = wilson_interval(round(row["accuracy"] * 8), 8)
    assert row["ci_method"] == "wilson"
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((expected.low, expected.high))


def test_quickstart_rejects_an_unknown_agent_with_a_clear_message(capsys):
    assert main(["quickstart", "--agents", "telepath", "--episodes", "1"]) == 2
    assert "unknown scripted agent 'telepath'" in capsys.readouterr().err
