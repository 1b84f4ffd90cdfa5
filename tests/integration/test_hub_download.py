"""GPT-2 variants downloaded from a fake Hugging Face hub served on 127.0.0.1.

The test starts an ``http.server`` in a thread that answers the requests
``huggingface_hub.snapshot_download`` makes (the revision API call, the tree
listing, then HEAD/GET on ``/<repo>/resolve/<commit>/<file>``) for a tiny random
GPT-2 that ``transformers`` saved, served as repo ``gpt2``. huggingface_hub is
pointed at it through its constants (read at import, so env vars set now would be
ignored) and writes into a temporary cache, never the user's.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import torch
from huggingface_hub import constants
from transformers import GPT2Config, GPT2LMHeadModel

from legollm.architectures.gpt2 import (
    GPT2,
    GPT2Variant,
    _download,
    config_from_hf,
    load_gpt2_weights,
)
from legollm.core.exceptions import ModelLoadError
from legollm.models import load_pretrained

REPO = GPT2Variant.GPT2.value
COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS = (".safetensors", ".bin")  # stored with git-lfs on the hub: ETag is the sha256
BIG = "pytorch_model.bin"  # the hub's gpt2 has one of 548 MB; it must never be fetched


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A tiny random GPT-2 saved by transformers, plus the files a hub repo has beside it."""
    d = tmp_path_factory.mktemp("hub") / REPO
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=128)).eval()
    hf.save_pretrained(d, safe_serialization=True)
    (d / BIG).write_bytes(b"\0" * (1 << 20))
    (d / "README.md").write_text("# gpt2\n")
    files = {p.name: p.read_bytes() for p in sorted(d.iterdir())}
    assert {"config.json", "model.safetensors"} <= set(files)
    return hf, files


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _etag(name: str, data: bytes) -> str:
    return hashlib.sha256(data).hexdigest() if name.endswith(LFS) else _git_oid(data)


class FakeHub:
    """What the hub serves, what it was asked, and an optional status for every reply."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.fail_with: int | None = None
        self._lock = threading.Lock()

    def log(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    def fetched(self) -> list[str]:
        """Files whose bytes were sent (GET on resolve/)."""
        prefix = f"/{REPO}/resolve/"
        return [p[len(prefix) :].split("/", 1)[1] for m, p in self.requests
                if m == "GET" and p.startswith(prefix)]  # fmt: skip

    def model_info(self) -> dict:
        return {"id": REPO, "modelId": REPO, "sha": COMMIT, "private": False,
                "siblings": [{"rfilename": n} for n in self.files]}  # fmt: skip

    def tree(self) -> list[dict]:
        out = []
        for name, data in self.files.items():
            entry = {"type": "file", "path": name, "size": len(data), "oid": _git_oid(data)}
            if name.endswith(LFS):
                entry["lfs"] = {"oid": _etag(name, data), "size": len(data), "pointerSize": 134}
            out.append(entry)
        return out


def _handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def _reply(self, status, body=b"", headers=None, send_body=True):
            self.send_response(status)
            for k, v in {"Content-Length": str(len(body)), **(headers or {})}.items():
                self.send_header(k, v)
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def _json(self, obj, send_body):
            body = json.dumps(obj).encode()
            self._reply(200, body, {"Content-Type": "application/json"}, send_body)

        def _serve(self, send_body: bool):
            path = urlsplit(self.path).path
            hub.log(self.command, path)
            if hub.fail_with is not None:
                code = {404: {"X-Error-Code": "RepoNotFound"}}.get(hub.fail_with, {})
                return self._reply(hub.fail_with, b'{"error": "fake hub says no"}', code, send_body)
            if path in (f"/api/models/{REPO}", f"/api/models/{REPO}/revision/main"):
                return self._json(hub.model_info(), send_body)
            if path == f"/api/models/{REPO}/tree/{COMMIT}":
                return self._json(hub.tree(), send_body)
            parts = path.split("/")  # "", repo, "resolve", revision, file
            if len(parts) == 5 and parts[1:3] == [REPO, "resolve"] and parts[4] in hub.files:
                name, data = parts[4], hub.files[parts[4]]
                headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{_etag(name, data)}"',
                           "Content-Type": "application/octet-stream"}  # fmt: skip
                if name.endswith(LFS):
                    headers |= {"X-Linked-Etag": headers["ETag"], "X-Linked-Size": str(len(data))}
                return self._reply(200, data, headers, send_body)
            self._reply(404, b'{"error": "Entry not found"}', {"X-Error-Code": "EntryNotFound"},
                        send_body)  # fmt: skip

        def do_GET(self):
            self._serve(send_body=True)

        def do_HEAD(self):
            self._serve(send_body=False)

    return Handler


@pytest.fixture
def hub(repo, tmp_path, monkeypatch):
    """Serve ``repo`` on 127.0.0.1 and point huggingface_hub (endpoint, cache) at it."""
    fake = FakeHub(repo[1])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    url_template = endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url_template)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", True)  # never send a real token
    # huggingface_hub >= 2 may cache an "agent harnesses" list in HF_HOME: keep it in tmp too
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(tmp_path / "hf_home" / "h.json"),
                        raising=False)  # fmt: skip
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _tiny_gpt2(hf: GPT2LMHeadModel) -> GPT2:
    return GPT2(config_from_hf(hf.config.to_dict()))


def _ids() -> torch.Tensor:
    return torch.randint(0, 50257, (2, 17), generator=torch.Generator().manual_seed(1))


def test_variant_download_gives_transformers_logits_and_fetches_only_two_files(repo, hub, tmp_path):
    hf, _ = repo
    model = load_gpt2_weights(_tiny_gpt2(hf), GPT2Variant.GPT2).eval()
    ids = _ids()
    with torch.no_grad():
        diff = (model(ids) - hf(ids).logits).abs().max().item()
    assert diff <= 1e-4
    assert sorted(hub.fetched()) == ["config.json", "model.safetensors"]
    assert all(BIG not in p for _, p in hub.requests), hub.requests
    # everything landed in the test's cache, as an HF dir load_pretrained reads too
    path = _download(GPT2Variant.GPT2)
    assert path.is_relative_to(tmp_path / "hf_cache")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    with torch.no_grad():
        assert (load_pretrained(path)(ids) - hf(ids).logits).abs().max().item() <= 1e-4


def test_second_load_uses_the_cache_and_survives_the_hub_going_down(repo, hub):
    hf, _ = repo
    load_gpt2_weights(_tiny_gpt2(hf), "gpt2")  # the string form of the variant
    assert sorted(hub.fetched()) == ["config.json", "model.safetensors"]
    before = len(hub.requests)
    load_gpt2_weights(_tiny_gpt2(hf), GPT2Variant.GPT2)
    again = hub.requests[before:]
    assert not [r for r in again if "/resolve/" in r[1]], again  # no HEAD, no GET of the files
    hub.fail_with = 500  # the hub is down: the cached snapshot still loads
    model = load_gpt2_weights(_tiny_gpt2(hf), GPT2Variant.GPT2).eval()
    ids = _ids()
    with torch.no_grad():
        assert (model(ids) - hf(ids).logits).abs().max().item() <= 1e-4


@pytest.mark.parametrize("status", [404, 500])
def test_hub_error_names_the_repo_and_the_local_alternative(repo, hub, status):
    hub.fail_with = status
    with pytest.raises(ModelLoadError) as err:
        load_gpt2_weights(_tiny_gpt2(repo[0]), GPT2Variant.GPT2)
    msg = str(err.value)
    assert "'gpt2'" in msg and "local path" in msg and "config.json + model.safetensors" in msg
    assert str(status) in msg and "\n" not in msg  # the hub's answer, on one line
    assert hub.requests and not hub.fetched()  # the hub was asked, nothing was downloaded


def test_offline_mode_never_touches_the_network(repo, hub, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE.*local path"):
        load_gpt2_weights(_tiny_gpt2(repo[0]), GPT2Variant.GPT2)
    assert hub.requests == []
