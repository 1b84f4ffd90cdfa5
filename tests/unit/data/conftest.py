"""A real HTTP server on 127.0.0.1, in a thread, with scripted misbehaviour."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections import Counter

import pytest

GOOD = b"To be, or not to be, that is the question.\n" * 200


class _Handler(http.server.BaseHTTPRequestHandler):
    hits: Counter = Counter()
    files: dict[str, bytes] = {}

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        _Handler.hits[self.path] += 1
        if self.path == "/drop.txt":  # promise the whole file, send a tenth, hang up
            self.send_response(200)
            self.send_header("Content-Length", str(len(GOOD)))
            self.end_headers()
            self.wfile.write(GOOD[: len(GOOD) // 10])
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path == "/down.txt":  # a server error that never goes away
            self.send_error(500, "broken")
            return
        if self.path == "/flaky.txt" and _Handler.hits[self.path] == 1:
            self.send_error(503, "try again")
            return
        body = _Handler.files.get(
            self.path, GOOD if self.path in ("/good.txt", "/flaky.txt") else None
        )
        if body is None:
            self.send_error(404, "not here")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def http_server():
    """Yields (base_url, hits, files); ``files[path] = bytes`` serves extra files."""
    _Handler.hits = Counter()
    _Handler.files = {}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Handler.hits, _Handler.files
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def good_sha() -> str:
    return hashlib.sha256(GOOD).hexdigest()
