"""One budget vocabulary across quantize, diagnose, deploy and demo; the old spellings still
work and name their new form."""

from __future__ import annotations

import argparse

import pytest

from frugalml.cli.budget import add_budget_arguments, budget_from


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_budget_arguments(parser)
    return parser.parse_args(argv)


def test_flags_map_to_budget_fields() -> None:
    args = _parse("--max-drop", "2", "--min-cosine", "0.995", "--min-agreement", "0.98",
                  "--max-ppl-rise", "5", "--max-size-ratio", "0.5")
    assert budget_from(args) == {
        "max_accuracy_drop_points": 2.0, "min_mean_cosine": 0.995, "min_top1_agreement": 0.98,
        "min_detection_agreement": 0.98, "min_frame_agreement": 0.98,
        "max_perplexity_increase_pct": 5.0,
        "max_size_ratio": 0.5}
    assert budget_from(_parse()) == {}


def test_old_spellings_are_aliases_that_say_the_new_name(
        capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse("--budget", "3", "--max-ppl-increase", "7")
    assert budget_from(args) == {"max_accuracy_drop_points": 3.0,
                                 "max_perplexity_increase_pct": 7.0}
    err = capsys.readouterr().err
    assert "--budget is now --max-drop" in err and "--max-ppl-increase is now --max-ppl-rise" in err


@pytest.mark.parametrize("command", ["quantize", "diagnose", "deploy", "demo"])
def test_every_command_takes_the_same_budget_flags(command: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from frugalml.cli import main

    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--max-drop", "--min-cosine", "--min-agreement", "--max-ppl-rise",
                 "--max-size-ratio"):
        assert flag in text, (command, flag)
