"""The examples in `legollm generate --help` run as written, after `legollm demo`."""

from __future__ import annotations

import shlex

import pytest

from legollm.cli.main import build_parser, main


def help_examples(capsys, command: str) -> list[list[str]]:
    """The ``legollm COMMAND ...`` lines of a command's --help, split as a shell would."""
    with pytest.raises(SystemExit):
        main([command, "--help"])
    lines = capsys.readouterr().out.splitlines()
    return [shlex.split(line, comments=True)[1:] for line in lines
            if line.strip().startswith(f"legollm {command} ")]  # fmt: skip


@pytest.mark.slow
def test_generate_help_example_runs_on_the_demos_output(tmp_path, capsys):
    examples = help_examples(capsys, "generate")
    demo_out = build_parser().parse_args(["demo"]).out  # where `legollm demo` writes
    ours = [e for e in examples if e[1].startswith(demo_out)]
    assert ours, f"no generate example reads the demo's output ({demo_out}): {examples}"
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--max-iters", "2", "--vocab-size", "300",
                 "--tokenizer-chars", "20000", "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    for argv in ours:
        argv = [str(out) + a[len(demo_out) :] if a.startswith(demo_out) else a for a in argv]
        assert main([*argv, "--max-new-tokens", "3"]) == 0, argv
        assert capsys.readouterr().out.startswith("The ")


def test_chat_help_example_names_a_run_dir_a_shipped_config_writes(capsys):
    """Running it needs a trained and fine-tuned model (minutes); its path must at least
    be the run_dir of one of the shipped SFT/DPO configs, not a name nothing writes."""
    from legollm.core.utils import read_yaml_mapping
    from tests.conftest import REPO_ROOT

    written = {
        read_yaml_mapping(f).get("train", {}).get("run_dir")
        for kind in ("sft", "dpo")
        for f in (REPO_ROOT / "configs" / kind).glob("*.yaml")
    }
    runs = [e[1] for e in help_examples(capsys, "chat") if e[1].startswith("runs/")]
    assert runs and all(r in written for r in runs), (runs, written)
