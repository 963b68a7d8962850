"""`toolgym compare`: a leaderboard table with intervals, Markdown and PNG plots."""

from __future__ import annotations

from toolgym.evals.cli import main
from toolgym.evals.harness import run_eval

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_compare_prints_a_leaderboard_and_writes_markdown_and_plots(tmp_path, capsys):
    runs = []
    for agent in ("oracle", "baseline"):
        directory = tmp_path / agent
        run_eval(directory, {"env": "Search-v0", "agent": f"scripted:{agent}", "limit": 12}, show_progress=False)
        runs.append(str(directory))
    out = tmp_path / "board"

    assert main(["compare", *runs, "--out", str(out)]) == 0

    printed = capsys.readouterr().out
    assert "scripted:oracle" in printed and "scripted:baseline" in printed and "procedural (Search-v0)" in printed
    markdown = (out / "leaderboard.md").read_text()
    oracle_line = next(line for line in markdown.splitlines() if line.startswith("| scripted:oracle"))
    assert "| 1.000 [0.758, 1.000] |" in oracle_line  # em 12/12: Wilson low = 12 / (12 + 1.96²) = 0.7575
    lines = markdown.splitlines()
    assert lines.index(oracle_line) < lines.index(
        next(line for line in lines if line.startswith("| scripted:baseline"))
    )
    for name in ("accuracy_by_benchmark.png", "accuracy_vs_tool_calls.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000


def test_compare_labels_must_match_the_runs_and_bad_dirs_are_refused(tmp_path, capsys):
    run_eval(tmp_path / "a", {"env": "Math-v0", "agent": "scripted:oracle", "limit": 3}, show_progress=False)

    assert main(["compare", str(tmp_path / "a"), "--labels", "x", "y", "--out", str(tmp_path / "o")]) == 2
    assert "2 labels for 1 run" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "not an evaluation run" in capsys.readouterr().err
