"""The README's Python examples run as written, and print what their comments claim.

Each ```python block runs from the repository root in a fresh namespace, as a
newcomer pasting it would (in this process: a new interpreter per block would
spend most of the time importing torch). Two substitutions keep the run
hermetic: the shared data path points at the fixture's folder, and ``/tmp/`` at
a per-test folder.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)

# Outputs the README states in a comment; the block that prints one must print it.
CLAIMED_OUTPUTS = {
    "count_parameters(GPT2(config))": "124439808",
    'gpt2.encode("Hello world")': "[15496, 995]",
    "print(streamer.text, streamer.stopped)": "hello 世界 True",
}


def block_id(code: str) -> str:
    """A readable test id: the block's first line that is not an import or blank."""
    for line in code.splitlines():
        if line.strip() and not line.startswith(("import ", "from ")):
            return line[:40]
    return code.splitlines()[0][:40]


def test_the_readme_has_examples_and_every_claim_has_its_block():
    assert len(BLOCKS) >= 6
    for snippet in CLAIMED_OUTPUTS:
        assert any(snippet in code for code in BLOCKS), f"no README block contains {snippet!r}"


@pytest.mark.parametrize("code", BLOCKS, ids=[block_id(c) for c in BLOCKS])
def test_readme_python_block_runs(code: str, shared_data, tmp_path, monkeypatch, capsys):
    # /tmp/ first: the shared data's own path may lie under /tmp
    code = code.replace("/tmp/", f"{tmp_path}/").replace("../shared/data", str(shared_data))
    monkeypatch.chdir(REPO_ROOT)
    exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
    printed = capsys.readouterr().out
    for snippet, output in CLAIMED_OUTPUTS.items():
        if snippet in code:
            assert output in printed, f"README claims {output!r}, printed:\n{printed}"
