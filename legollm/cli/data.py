"""``legollm data download|prepare|summary`` and the console scripts
``data-download``, ``data-prepare``, ``data-summary`` (the same parsers)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing

# --------------------------------------------------------------------------- download


def _add_download_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="registered dataset (tiny_shakespeare, the_verdict)")
    p.add_argument("dir", help="folder to download into")
    p.add_argument("--url", help="download this URL instead of a registered dataset")
    p.add_argument("--sha256", help="expected sha256 of the file (checked before it is kept)")
    p.add_argument("--filename", help="name of the file inside DIR")
    p.add_argument("--retries", type=int, default=3, help="retries on transient failures")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per network read")
    p.add_argument("--extract", action="store_true", help="unpack a zip/tar archive into DIR")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _download(args: argparse.Namespace) -> int:
    from legollm.core.exceptions import DownloadError
    from legollm.data.download import DATASETS, download

    if args.name is None and args.url is None:
        raise DownloadError(f"give a dataset name ({', '.join(sorted(DATASETS))}) or --url")
    path = download(
        args.name,
        args.dir,
        url=args.url,
        sha256=args.sha256,
        filename=args.filename,
        retries=args.retries,
        timeout=args.timeout,
        extract=args.extract,
        progress=not args.no_progress,
    )
    print(path)
    return 0


# --------------------------------------------------------------------------- prepare


_PREPARE_HELP = {
    "inputs": "text/JSONL files or folders (searched recursively)",
    "output_dir": "folder for train.bin, val.bin and meta.json",
    "tokenizer": "char | gpt2 | tiktoken | legollm | hf_json | llama3 (default char)",
    "tokenizer_path": "the .tiktoken rank file, LegoLLM tokenizer file, tokenizer.json or "
    "Llama 3 tokenizer.model",
    "encoder_json": "GPT-2 encoder.json",
    "vocab_bpe": "GPT-2 vocab.bpe",
    "pattern": "tiktoken split pattern: gpt2, gpt4 (default) or a regex",
    "special_tokens": "JSON, e.g. '{\"<|endoftext|>\": 50256}'",
    "split": "documents of a text file: file (default) | paragraph | line | regex:PATTERN",
    "max_doc_chars": "group consecutive pieces into documents of about this many characters",
    "text_field": "JSONL field holding the text (default text)",
    "val_fraction": "share of documents for val.bin (default 0.1)",
    "seed": "seed of the document shuffle (default 1337)",
    "shuffle": "shuffle documents before the split (default on)",
    "dtype": "auto (default) | uint16 | uint32",
    "num_workers": "tokenizer processes (default: all cores)",
    "chunk_chars": "characters tokenized per batch; bounds memory (default 4,000,000)",
    "extensions": "file suffixes read from folders",
}


def _add_prepare_args(p: argparse.ArgumentParser) -> None:
    from legollm.data.prepare import PrepareConfig

    p.add_argument("--config", help="YAML file of prepare fields; flags override it")
    p.add_argument("-v", "--verbose", action="store_true", help="print each step to stderr")
    hints = typing.get_type_hints(PrepareConfig)
    for f in dataclasses.fields(PrepareConfig):
        flag, hint = "--" + f.name.replace("_", "-"), str(hints[f.name])
        kw: dict = {"default": None, "help": _PREPARE_HELP.get(f.name)}
        if f.name in ("inputs", "extensions"):
            kw["nargs"] = "+"
        elif hint == "<class 'bool'>":
            kw["action"] = argparse.BooleanOptionalAction
        elif "int" in hint and f.name != "special_tokens":
            kw["type"] = int
        elif "float" in hint:
            kw["type"] = float
        p.add_argument(flag, **kw)


def _prepare(args: argparse.Namespace) -> int:
    from legollm.core.exceptions import ConfigError
    from legollm.data.prepare import PrepareConfig, prepare_dataset

    d: dict = {}
    if args.config:
        d = PrepareConfig.from_yaml(args.config).to_dict()
    for f in dataclasses.fields(PrepareConfig):
        value = getattr(args, f.name)
        if value is not None:
            if f.name == "special_tokens":
                try:
                    value = json.loads(value)
                except json.JSONDecodeError as e:
                    raise ConfigError(f"--special-tokens must be JSON: {e}") from e
            d[f.name] = value
    out = prepare_dataset(PrepareConfig.from_dict(d), verbose=args.verbose)
    from legollm.data.summary import format_summary, summarize_prepared

    print(f"wrote {out}")
    print(format_summary(summarize_prepared(out)))
    return 0


# --------------------------------------------------------------------------- summary


def _add_summary_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="+", help="text/JSONL files or folders, or a prepared folder")
    p.add_argument("--split", default="file", help="document split: file|paragraph|line|regex:P")
    p.add_argument("--text-field", default="text", help="JSONL text field")
    p.add_argument("--tokenizer", help="char|gpt2|tiktoken|legollm|hf_json|llama3: count tokens")
    p.add_argument("--tokenizer-path", help="the .tiktoken, LegoLLM, tokenizer.json or .model")
    p.add_argument("--encoder-json", help="GPT-2 encoder.json")
    p.add_argument("--vocab-bpe", help="GPT-2 vocab.bpe")
    p.add_argument("--pattern", help="tiktoken split pattern (gpt2, gpt4 or a regex)")
    p.add_argument("--top", type=int, default=10, help="how many frequent tokens to show")
    p.add_argument("--plot", metavar="PNG", help="write a histogram of document lengths")


def _summary(args: argparse.Namespace) -> int:
    from pathlib import Path

    from legollm.data import summary as S

    first = Path(args.path[0])
    if len(args.path) == 1 and (first / "meta.json").is_file():
        s = S.summarize_prepared(first)
        print(S.format_summary(s))
        if args.plot:
            lengths = S.document_lengths_prepared(first, "train")
            print(f"wrote {S.plot_lengths(lengths, args.plot, unit='tokens')}")
        return 0
    tok = None
    if args.tokenizer:
        from legollm.core.tokenization.specs import CharTokenizer, load_tokenizer

        if args.tokenizer == "char":
            from legollm.data.prepare import PrepareConfig, iter_documents

            cfg = PrepareConfig(inputs=args.path, output_dir=".", split=args.split)
            tok = CharTokenizer.from_text(iter_documents(cfg))
        else:
            spec = {
                "type": args.tokenizer,
                "path": args.tokenizer_path,
                "encoder_json": args.encoder_json,
                "vocab_bpe": args.vocab_bpe,
                "pattern": args.pattern,
            }
            tok = load_tokenizer({k: v for k, v in spec.items() if v is not None})
    s = S.summarize_text(
        args.path, split=args.split, text_field=args.text_field, tokenizer=tok, top_k=args.top
    )
    print(S.format_summary(s))
    if args.plot:
        print(f"wrote {S.plot_lengths(s['doc_chars'], args.plot)}")
    return 0


# --------------------------------------------------------------------------- wiring

_COMMANDS = {
    "download": (_add_download_args, _download, "download a named dataset or a URL, verified"),
    "prepare": (_add_prepare_args, _prepare, "tokenize text into train.bin/val.bin + meta.json"),
    "summary": (_add_summary_args, _summary, "counts for text files or a prepared folder"),
}


def register(subparsers) -> None:
    """Add ``legollm data download|prepare|summary``."""
    data = subparsers.add_parser("data", help="download, prepare and summarise datasets")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    for name, (add_args, handler, help_) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        add_args(p)
        p.set_defaults(func=handler)


def _main(name: str, argv: list[str] | None) -> int:
    from legollm.cli.main import run

    add_args, handler, help_ = _COMMANDS[name]
    parser = argparse.ArgumentParser(prog=f"data-{name}", description=help_)
    add_args(parser)
    return run(handler, parser.parse_args(argv))


def download_main(argv: list[str] | None = None) -> int:
    return _main("download", argv)


def prepare_main(argv: list[str] | None = None) -> int:
    return _main("prepare", argv)


def summary_main(argv: list[str] | None = None) -> int:
    return _main("summary", argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(prepare_main())
