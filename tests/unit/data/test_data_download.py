"""Downloads against a real local HTTP server: good, tampered, dropped, missing, flaky."""

from __future__ import annotations

import io
import socket
import tarfile

import pytest

from legollm.cli.data import download_main
from legollm.core.exceptions import DownloadError
from legollm.data import download as dl
from tests.unit.data.conftest import GOOD

FAST = {"retries": 2, "backoff": 0.01, "timeout": 5, "progress": False}


def _leftovers(d):
    return sorted(p.name for p in d.iterdir())


def test_good_file_is_saved_with_checksum(http_server, good_sha, tmp_path):
    base, hits, _ = http_server
    path = dl.download(None, tmp_path, url=f"{base}/good.txt", sha256=good_sha, **FAST)
    assert path == tmp_path / "good.txt" and path.read_bytes() == GOOD
    assert _leftovers(tmp_path) == ["good.txt"]  # no temp file left behind
    dl.download(None, tmp_path, url=f"{base}/good.txt", sha256=good_sha, **FAST)
    assert hits["/good.txt"] == 1  # a verified file already there is not fetched again


def test_wrong_checksum_leaves_nothing(http_server, tmp_path):
    base, _, _ = http_server
    (tmp_path / "good.txt").write_text("previous version")
    with pytest.raises(DownloadError, match="checksum mismatch"):
        dl.download(None, tmp_path, url=f"{base}/good.txt", sha256="0" * 64, **FAST)
    assert (tmp_path / "good.txt").read_text() == "previous version"
    assert _leftovers(tmp_path) == ["good.txt"]


def test_connection_dropped_mid_file_is_retried_then_fails_cleanly(http_server, tmp_path):
    base, hits, _ = http_server
    with pytest.raises(DownloadError, match="after 3 attempts"):
        dl.download(None, tmp_path, url=f"{base}/drop.txt", **FAST)
    assert hits["/drop.txt"] == 3
    assert _leftovers(tmp_path) == []


def test_404_is_not_retried(http_server, tmp_path):
    base, hits, _ = http_server
    with pytest.raises(DownloadError, match="404"):
        dl.download(None, tmp_path, url=f"{base}/missing.txt", **FAST)
    assert hits["/missing.txt"] == 1
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(("path", "message"), [("/missing.txt", "404"), ("/down.txt", "500")])
def test_failed_download_leaves_no_new_folder(http_server, tmp_path, path, message):
    base, _, _ = http_server
    with pytest.raises(DownloadError, match=message):
        dl.download(None, tmp_path / "new" / "sub", url=f"{base}{path}", **FAST)
    assert _leftovers(tmp_path) == []  # neither new/ nor new/sub/ is left behind
    (tmp_path / "mine").mkdir()
    with pytest.raises(DownloadError, match=message):
        dl.download(None, tmp_path / "mine", url=f"{base}{path}", **FAST)
    assert _leftovers(tmp_path) == ["mine"]  # a folder that was there stays


def test_transient_503_succeeds_on_retry(http_server, good_sha, tmp_path):
    base, hits, _ = http_server
    path = dl.download(None, tmp_path, url=f"{base}/flaky.txt", sha256=good_sha, **FAST)
    assert path.read_bytes() == GOOD and hits["/flaky.txt"] == 2


def test_registry_checksums_match_the_real_files(http_server, shared_data, tmp_path, monkeypatch):
    """Serve the shared copies under the registry's names: the registered sha256 must accept them."""
    base, _, files = http_server
    for name, src in [
        ("tiny_shakespeare", "tiny_shakespeare.txt"),
        ("the_verdict", "the_verdict.txt"),
    ]:
        files[f"/{name}"] = (shared_data / "text" / src).read_bytes()
        ds = dl.DATASETS[name]
        monkeypatch.setitem(
            dl.DATASETS, name, dl.Dataset(f"{base}/{name}", ds.sha256, ds.filename, "")
        )
        path = dl.download(name, tmp_path, **FAST)
        assert path.read_bytes() == files[f"/{name}"]


def test_names_escaping_the_folder_are_refused(http_server, tmp_path):
    base, _, _ = http_server
    for bad in ("../evil.txt", "/etc/passwd", "a/../../b"):
        with pytest.raises(DownloadError, match="refusing"):
            dl.download(None, tmp_path / "d", url=f"{base}/good.txt", filename=bad, **FAST)
    assert not (tmp_path / "evil.txt").exists()


def test_archive_member_escaping_the_folder_is_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name in ("ok.txt", "../escape.txt"):
            info = tarfile.TarInfo(name)
            info.size = 2
            t.addfile(info, io.BytesIO(b"hi"))
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(DownloadError, match="outside"):
        dl.extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out" / "ok.txt").exists()


def test_offline_cli_error_is_one_line_with_the_way_out(tmp_path, monkeypatch, capsys):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    rc = download_main(["tiny_shakespeare", str(tmp_path), "--no-progress", "--retries", "0"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err.count("\n") == 0
    assert "offline" in err and "data-prepare" in err and err.startswith("error:")
    assert _leftovers(tmp_path) == []


def test_cli_unknown_dataset(tmp_path, capsys):
    assert download_main(["no_such_set", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown dataset" in err and "tiny_shakespeare" in err


def test_cli_unwritable_folder_is_one_line(capsys):
    assert download_main(["the_verdict", "/proc/legollm/x", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot create /proc/legollm/x" in err
