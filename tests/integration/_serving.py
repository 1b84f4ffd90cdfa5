"""Start ``legollm serve`` on a free loopback port in a subprocess, and stop it after."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(model: Path, *args: str, timeout: float = 120) -> Iterator[str]:
    """Yield the server's base URL (``http://127.0.0.1:PORT``) once /health answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "legollm.cli.main", "serve", str(model), "--port", str(port),
           "--device", "cpu", *args]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="2")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"legollm serve exited:\n{proc.stdout.read().decode()}")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{url}/health", timeout=2).read()
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"legollm serve did not answer on {url} in {timeout} s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
