"""``legollm serve`` against the official ``openai`` client, a client nobody here wrote.

One server (a subprocess on a free loopback port, tiny random GPT-2, API key on)
answers every test; the oracles are ``legollm generate``, tiktoken's GPT-2
encoding for token counts, and each request's own answer when sent alone.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from legollm.cli.main import main
from tests.integration._serving import serving

openai = pytest.importorskip("openai")
tiktoken = pytest.importorskip("tiktoken")
pytestmark = pytest.mark.slow
KEY = "test-key-123"
PROMPTS = [f"Request {i}: the {w} of" for i, w in enumerate(
    ["cat", "dog", "sun", "moon", "tree", "river", "stone", "bird", "fish", "cloud", "wind", "rain", "snow", "fire", "sea", "hill"])]  # fmt: skip


@pytest.fixture(scope="module")
def enc(shared_data):
    """tiktoken's GPT-2 encoding, built from the same files the served model reads."""
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext.openai_public import r50k_pat_str

    gpt2 = shared_data / "gpt2"
    ranks = data_gym_to_mergeable_bpe_ranks(str(gpt2 / "vocab.bpe"), str(gpt2 / "encoder.json"))
    return tiktoken.Encoding("gpt2", pat_str=r50k_pat_str, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256})  # fmt: skip


@pytest.fixture(scope="module")
def server(hf_gpt2_dir):
    with serving(hf_gpt2_dir, "--api-key", KEY, "--max-batch-size", "6",
                 "--max-queue", "16", "--name", "tiny") as url:  # fmt: skip
        yield url


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=60)


def _complete(client, prompt, n, **kw):
    r = client.completions.create(model="tiny", prompt=prompt, max_tokens=n, temperature=0, **kw)
    return r


def _streamed(client, prompt, n, **kw) -> str:
    chunks = client.completions.create(model="tiny", prompt=prompt, max_tokens=n,
                                       temperature=0, stream=True, **kw)  # fmt: skip
    return "".join(c.choices[0].text for c in chunks if c.choices)


def _post(url, body: bytes, headers=None):
    """(status, parsed body) of a raw POST, errors included."""
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {KEY}", **(headers or {})})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_models_and_health(client, server):
    assert [m.id for m in client.models.list()] == ["tiny"]
    with urllib.request.urlopen(f"{server}/health") as r:
        assert json.loads(r.read())["status"] == "ok"


def test_greedy_completion_equals_legollm_generate_and_usage_counts(
    client, hf_gpt2_dir, enc, capsys
):
    prompt = "The quick brown fox"
    r = _complete(client, prompt, 12)
    main(["generate", str(hf_gpt2_dir), "--prompt", prompt, "--strategy", "greedy",
          "--max-new-tokens", "12", "--device", "cpu"])  # fmt: skip
    printed = capsys.readouterr().out
    assert printed == prompt + r.choices[0].text + "\n"
    assert r.object == "text_completion" and r.model == "tiny"
    assert r.choices[0].finish_reason == "length"
    n_prompt = len(enc.encode_ordinary(prompt))
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (n_prompt, 12)
    assert r.usage.total_tokens == n_prompt + 12
    assert _streamed(client, prompt, 12) == r.choices[0].text


def test_chat_streamed_equals_whole_and_control_tokens_are_text(client, enc):
    msgs = [{"role": "user", "content": "Hello <|endoftext|> there"}]
    whole = client.chat.completions.create(model="tiny", messages=msgs, max_tokens=10,
                                           temperature=0)  # fmt: skip
    chunks = client.chat.completions.create(model="tiny", messages=msgs, max_tokens=10,
                                            temperature=0, stream=True)  # fmt: skip
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert whole.object == "chat.completion" and whole.choices[0].message.role == "assistant"
    assert streamed == whole.choices[0].message.content
    # the plain template's layout, its typed "<|endoftext|>" encoded as characters
    layout = ["### User:\nHello <|endoftext|> there\n\n", "### Assistant:\n"]
    assert whole.usage.prompt_tokens == sum(len(enc.encode_ordinary(t)) for t in layout)
    r = _complete(client, "<|endoftext|>", 1)
    assert r.usage.prompt_tokens == len(enc.encode_ordinary("<|endoftext|>"))


def test_stop_string_across_token_boundaries(client, enc):
    prompt = "Once upon a time"
    text = _complete(client, prompt, 30).choices[0].text
    ids = enc.encode_ordinary(text)
    # six characters around a token boundary, where they first appear in the text
    bounds = [len(enc.decode(ids[:i])) for i in range(1, len(ids))]
    cut = next(b for b in bounds if b >= 3 and text.find(text[b - 3 : b + 3]) == b - 3)
    stop = text[cut - 3 : cut + 3]
    assert len(stop) == 6
    r = _complete(client, prompt, 30, stop=[stop, "never appears"])
    assert r.choices[0].text == text[: cut - 3]
    assert r.choices[0].finish_reason == "stop"
    assert _streamed(client, prompt, 30, stop=stop) == text[: cut - 3]


def test_sixteen_concurrent_streams_each_equal_alone_and_a_disconnect(client, server):
    lengths = [8 + 5 * (i % 6) for i in range(16)]
    alone = [_complete(client, p, n).choices[0].text for p, n in zip(PROMPTS, lengths, strict=True)]
    started = threading.Event()

    def leave_early():  # reads two events, then drops the connection
        req = urllib.request.Request(f"{server}/v1/completions", method="POST", data=json.dumps(
            {"prompt": "I will leave", "max_tokens": 200, "stream": True}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=60) as r:
            r.readline(), r.readline()
            started.set()

    with ThreadPoolExecutor(17) as pool:
        gone = pool.submit(leave_early)
        futures = [
            pool.submit(_streamed, client, p, n) for p, n in zip(PROMPTS, lengths, strict=True)
        ]
        texts = [f.result() for f in futures]
        gone.result()
    assert started.is_set()
    assert texts == alone
    with urllib.request.urlopen(f"{server}/health") as r:  # the leaver's row was freed
        assert json.loads(r.read())["running"] == 0


def test_errors_are_openai_shaped_and_the_server_keeps_serving(client, server):
    url = f"{server}/v1/completions"
    ok = lambda: _complete(client, "still here", 2).choices[0].finish_reason == "length"  # noqa: E731
    cases = [
        (b"{not json", {}, 400, None),
        (json.dumps({"prompt": 5}).encode(), {}, 422, "prompt"),
        (json.dumps({"prompt": "x", "temperature": "hot"}).encode(), {}, 422, "temperature"),
        (json.dumps({"prompt": "x", "max_tokens": 1000}).encode(), {}, 400, "max_tokens"),
        (json.dumps({"prompt": "word " * 300}).encode(), {}, 400, "prompt"),
        # a body over the 1 MiB limit, several times: the client reads the 413 every time
        # (answering before the body is read gave a broken pipe about one time in three)
        *[(json.dumps({"prompt": "x" * (2 << 20)}).encode(), {}, 413, None)] * 8,
        (json.dumps({"prompt": "x"}).encode(), {"Authorization": "Bearer wrong"}, 401, None),
        (json.dumps({"prompt": "x"}).encode(), {"Authorization": ""}, 401, None),
    ]
    for body, headers, status, param in cases:
        got, err = _post(url, body, headers)
        assert got == status, (status, err)
        assert set(err["error"]) == {"message", "type", "param", "code"}
        assert err["error"]["param"] == param
        assert KEY not in json.dumps(err)
        assert ok()
    # a full queue: more requests at once than 6 rows + 16 waiting places
    flood = json.dumps({"prompt": "flood", "max_tokens": 20}).encode()
    with ThreadPoolExecutor(40) as pool:
        statuses = [s for s, _ in pool.map(lambda _: _post(url, flood), range(30))]
    assert 429 in statuses and 200 in statuses
    assert set(statuses) == {200, 429}
    assert ok()
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server}/v1", api_key="nope", max_retries=0).models.list()
