"""Prepare with BPE tokenizers: GPT-2 ids equal tiktoken's; a trained LegoLLM tokenizer file."""

from __future__ import annotations

import numpy as np
import pytest

from legollm.core import tokenization
from legollm.data import TokenDataLoader, load_tokenizer, prepare_dataset, read_meta
from legollm.data.prepare import PrepareConfig, iter_documents


def _tiktoken_gpt2(gpt2_dir):
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext.openai_public import r50k_pat_str

    ranks = data_gym_to_mergeable_bpe_ranks(
        str(gpt2_dir / "vocab.bpe"), str(gpt2_dir / "encoder.json")
    )
    return tiktoken.Encoding(
        "gpt2", pat_str=r50k_pat_str, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 50256}
    )


def test_gpt2_prepare_matches_tiktoken(shared_data, tmp_path):
    gpt2 = shared_data / "gpt2"
    src = tmp_path / "v.txt"
    # a literal "<|endoftext|>" in the data is text, not the separator
    src.write_text(
        (shared_data / "text" / "the_verdict.txt").read_text() + "\n\nsee <|endoftext|> here"
    )
    cfg = dict(inputs=[str(src)], tokenizer="gpt2", split="paragraph", shuffle=False,
               encoder_json=str(gpt2 / "encoder.json"), vocab_bpe=str(gpt2 / "vocab.bpe"))  # fmt: skip
    out = prepare_dataset(output_dir=str(tmp_path / "o"), val_fraction=0.0, **cfg)
    meta = read_meta(out)
    assert meta["dtype"] == "uint16" and meta["vocab_size"] == 50257
    assert meta["eot_token_id"] == 50256
    enc = _tiktoken_gpt2(gpt2)
    docs = list(iter_documents(PrepareConfig(output_dir="-", **cfg)))
    expected = [i for d in docs for i in [*enc.encode_ordinary(d), 50256]]
    got = np.fromfile(out / "train.bin", dtype=np.uint16)
    assert got.tolist() == expected
    # the tokenizer files travel with the dataset
    tok = load_tokenizer(meta["tokenizer"])
    assert meta["tokenizer"]["encoder_json"].startswith(str(out.resolve()))
    assert tok.decode(got[: len(enc.encode_ordinary(docs[0]))].tolist()) == docs[0]
    x, y = TokenDataLoader(out, 2, 32, split="train").next_batch()
    assert x.max() <= 50256


@pytest.mark.parametrize(("eot_id", "dtype"), [(65535, "uint16"), (65536, "uint32")])
def test_trained_tokenizer_file_dtype_boundary(tmp_path, eot_id, dtype):
    tok = tokenization.RegexBPETokenizer()
    text = "hello world, hello tokens. " * 20
    tok.train(text, 256 + 8)
    tok.register_special_tokens({"<|endoftext|>": eot_id})
    path = tmp_path / "tok.model"
    saved = tok.save(path)
    (tmp_path / "in.txt").write_text("hello world\n\nhello tokens\n\nworld")
    out = prepare_dataset(inputs=[str(tmp_path / "in.txt")], output_dir=str(tmp_path / "o"),
                          tokenizer="legollm", tokenizer_path=str(saved), split="paragraph",
                          val_fraction=0.0, shuffle=False)  # fmt: skip
    meta = read_meta(out)
    assert meta["dtype"] == dtype and meta["vocab_size"] == eot_id + 1
    ids = np.fromfile(out / "train.bin", dtype=dtype)
    assert (ids == eot_id).sum() == 3
    back = load_tokenizer(meta["tokenizer"])
    assert back.decode(ids[ids != eot_id].tolist()) == "hello worldhello tokensworld"
