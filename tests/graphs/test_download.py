"""graphs.download against a local HTTP server on 127.0.0.1; never the real network."""

import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from graphs.download import DownloadError, download
from graphs.progress import Silent

PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # ~1 MB, not a multiple of the chunk size
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Server:
    """Serves PAYLOAD at /kg.csv. Modes: normal, truncated, ignore-range."""

    def __init__(self, mode: str = "normal") -> None:
        self.mode = mode
        self.ranges: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != "/kg.csv":
                    self.send_error(404)
                    return
                requested = self.headers.get("Range")
                server.ranges.append(requested)
                start = 0
                if requested and server.mode != "ignore-range":
                    start = int(requested.removeprefix("bytes=").split("-")[0])
                body = PAYLOAD[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
                self.send_header("Connection", "close")
                self.end_headers()
                if server.mode == "truncated":
                    body = body[: len(body) // 2]
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/kg.csv"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_full_download_with_checksum(tmp_path):
    seen = []

    class Recorder(Silent):
        def task(self, description, total=None):
            seen.append(total)
            return seen.append

    with Server() as server:
        path = download(server.url, tmp_path / "kg.csv", Recorder(), sha256=SHA.upper())
    assert path.read_bytes() == PAYLOAD
    assert not (tmp_path / "kg.csv.part").exists()
    assert seen[0] == len(PAYLOAD) and seen[-1] == len(PAYLOAD)
    assert server.ranges == [None]


def test_checksum_mismatch_leaves_no_file(tmp_path):
    with Server() as server, pytest.raises(DownloadError, match="SHA-256 mismatch"):
        download(server.url, tmp_path / "kg.csv", sha256="0" * 64)
    assert not (tmp_path / "kg.csv").exists()
    assert not (tmp_path / "kg.csv.part").exists()


def test_truncated_download_is_kept_and_resumed(tmp_path):
    dest = tmp_path / "kg.csv"
    with Server("truncated") as server, pytest.raises(DownloadError, match="truncated.*re-running resumes"):
        download(server.url, dest, sha256=SHA)
    part = tmp_path / "kg.csv.part"
    assert not dest.exists()
    kept = part.stat().st_size
    assert 0 < kept < len(PAYLOAD)
    assert part.read_bytes() == PAYLOAD[:kept]

    progress = Silent()
    with Server() as server:
        download(server.url, dest, progress, sha256=SHA)
    assert server.ranges == [f"bytes={kept}-"]
    assert dest.read_bytes() == PAYLOAD
    assert not part.exists()
    assert any("Resuming" in n for n in progress.notes)


def test_a_server_ignoring_range_restarts_the_download(tmp_path):
    (tmp_path / "kg.csv.part").write_bytes(PAYLOAD[:1000])
    progress = Silent()
    with Server("ignore-range") as server:
        download(server.url, tmp_path / "kg.csv", progress, sha256=SHA)
    assert server.ranges == ["bytes=1000-"]
    assert (tmp_path / "kg.csv").read_bytes() == PAYLOAD
    assert any("restarting" in n for n in progress.notes)


def test_no_network_is_a_clear_error(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=rf"cannot reach 127\.0\.0\.1:{port}: .*check your network or pass --url"):
        download(f"http://127.0.0.1:{port}/kg.csv", tmp_path / "kg.csv", timeout=5)
    assert not (tmp_path / "kg.csv").exists()


def test_http_errors_are_reported(tmp_path):
    with Server() as server, pytest.raises(DownloadError, match="HTTP 404"):
        download(server.url + ".missing", tmp_path / "kg.csv")
    assert not (tmp_path / "kg.csv").exists()


def test_cli_downloads_into_the_kg_dir(tmp_path):
    from typer.testing import CliRunner

    from run_agent import app

    kg_dir = tmp_path / "primekg"
    with Server() as server:
        result = CliRunner().invoke(app, ["kg", "download", "primekg", "--kg-dir", str(kg_dir),
                                          "--url", server.url, "--sha256", SHA, "--no-build"])
    assert result.exit_code == 0, result.output
    assert (kg_dir / "kg.csv").read_bytes() == PAYLOAD

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = CliRunner().invoke(app, ["kg", "download", "primekg", "--kg-dir", str(tmp_path / "other"),
                                      "--url", f"http://127.0.0.1:{port}/kg.csv", "--no-build"])
    assert result.exit_code == 2
    assert "cannot reach" in result.output
    result = CliRunner().invoke(app, ["kg", "download", "nope"])
    assert result.exit_code == 2 and "only one is primekg" in result.output
