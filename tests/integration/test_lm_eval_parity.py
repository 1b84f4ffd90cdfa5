"""The ``legollm`` model type in lm-evaluation-harness against the harness's own ``hf``
model, on the same tiny random weights (GPT-2 and Llama saved with ``save_pretrained``)
and on local tasks: YAML files that read a JSONL written here (``dataset_path: json``),
so nothing is fetched from the hub.

Every request must get the same answer: each choice's log-likelihood and is_greedy,
each document's rolling log-likelihood, each greedy generation; and so the same
task metrics.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

lm_eval = pytest.importorskip("lm_eval")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from lm_eval import simple_evaluate  # noqa: E402
from lm_eval.models.huggingface import HFLM  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

from legollm.evaluation.harness import LegoLLMHarness  # noqa: E402

pytestmark = pytest.mark.slow

CONTEXT = 32
QUESTIONS = [
    {"context": "The cat sat on the", "choices": ["mat.", "moon", "dog and the hat"], "gold": 0},
    {
        "context": "Hello world, how are",
        "choices": ["you today?", "they", "fine thanks"],
        "gold": 0,
    },
    {"context": "One, two, three,", "choices": ["four", "five, six"], "gold": 1},
    {"context": "A long time ago " * 6, "choices": ["there was", "it"], "gold": 0},
]
DOCS = [{"text": "hello world, how are you today? fine thanks, and you? " * k} for k in (1, 4, 9)]

MC_TASK = """task: legollm_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{gold}}}}"
metric_list:
  - {{metric: acc, aggregation: mean, higher_is_better: true}}
  - {{metric: acc_norm, aggregation: mean, higher_is_better: true}}
"""
ROLLING_TASK = """task: legollm_rolling
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{{{text}}}}"
metric_list:
  - metric: word_perplexity
  - metric: byte_perplexity
  - metric: bits_per_byte
"""
GEN_TASK = """task: legollm_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: generate_until
doc_to_text: "{{{{context}}}}"
doc_to_target: "{{{{choices[gold]}}}}"
generation_kwargs:
  until: ["?", "\\n"]
  max_gen_toks: 6
  do_sample: false
metric_list:
  - metric: exact_match
"""


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    d = tmp_path_factory.mktemp("tasks")
    for name, rows in (("questions", QUESTIONS), ("docs", DOCS)):
        (d / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "mc.yaml").write_text(MC_TASK.format(path=d / "questions.jsonl"))
    (d / "rolling.yaml").write_text(ROLLING_TASK.format(path=d / "docs.jsonl"))
    (d / "gen.yaml").write_text(GEN_TASK.format(path=d / "questions.jsonl"))
    return TaskManager(include_path=str(d), include_defaults=False)


def gpt2_dir(d, shared):
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=CONTEXT)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(d)
    shutil.copy(shared / "gpt2" / "encoder.json", d / "vocab.json")
    shutil.copy(shared / "gpt2" / "vocab.bpe", d / "merges.txt")


def llama_dir(d, _shared):
    """A Llama with a 300-token byte-level BPE whose end of text is <|endoftext|>."""
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"],
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tok.train_from_iterator([d["text"] for d in DOCS] + [json.dumps(QUESTIONS)], trainer)
    d.mkdir(parents=True, exist_ok=True)
    tok.save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>"}))  # fmt: skip
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=32,
                                   intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2,
                                   max_position_embeddings=CONTEXT, tie_word_embeddings=False,
                                   eos_token_id=0, bos_token_id=None)  # fmt: skip
    transformers.LlamaForCausalLM(cfg).save_pretrained(d)


@pytest.fixture(scope="module", params=[gpt2_dir, llama_dir], ids=["gpt2", "llama"])
def both(request, tmp_path_factory, shared_data, tasks):
    d = tmp_path_factory.mktemp(request.param.__name__)
    request.param(d, shared_data)
    ours = LegoLLMHarness(path=str(d), device="cpu", batch_size=3)
    hf = HFLM(pretrained=str(d), device="cpu", batch_size=3, dtype="float32")
    return {name: simple_evaluate(model=lm, tasks=["legollm_mc", "legollm_rolling",
                                                   "legollm_gen"],
                                  task_manager=tasks, log_samples=True, bootstrap_iters=0)
            for name, lm in (("legollm", ours), ("hf", hf))}  # fmt: skip


def responses(out, task):
    return [s["resps"] for s in sorted(out["samples"][task], key=lambda s: s["doc_id"])]


def test_choice_loglikelihoods_and_greedy_equal_hf(both):
    ours, theirs = responses(both["legollm"], "legollm_mc"), responses(both["hf"], "legollm_mc")
    assert len(ours) == len(QUESTIONS)
    for doc_ours, doc_theirs in zip(ours, theirs, strict=True):
        for [(lp, greedy)], [(want_lp, want_greedy)] in zip(doc_ours, doc_theirs, strict=True):
            assert lp == pytest.approx(want_lp, abs=1e-4)
            assert greedy == want_greedy


def test_rolling_loglikelihoods_equal_hf(both):
    ours, theirs = (
        responses(both["legollm"], "legollm_rolling"),
        responses(both["hf"], "legollm_rolling"),
    )
    for [ours_lp], [their_lp] in zip(ours, theirs, strict=True):
        assert ours_lp == pytest.approx(their_lp, abs=1e-3)


def test_greedy_generations_equal_hf(both):
    assert responses(both["legollm"], "legollm_gen") == responses(both["hf"], "legollm_gen")


def test_task_metrics_equal_hf(both):
    for task in ("legollm_mc", "legollm_rolling", "legollm_gen"):
        ours, theirs = both["legollm"]["results"][task], both["hf"]["results"][task]
        for metric, value in theirs.items():
            if isinstance(value, float):
                assert ours[metric] == pytest.approx(value, rel=1e-5), (task, metric)


def test_a_fresh_interpreter_finds_the_model_type_by_name():
    """What the plain ``lm_eval --model legollm`` relies on: the installed start-up hook
    registers the name when lm-eval's models module is imported (and not before)."""
    import subprocess
    import sys

    code = ("import sys; from lm_eval.api.registry import get_model; "
            "print('torch' in sys.modules, get_model('legollm').__name__, "
            "get_model('hf').__name__)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    assert out == ["False", "LegoLLMHarness", "HFLM"]
