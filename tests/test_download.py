"""Downloads never hang, resume what a killed or stalled transfer left, and check what arrived (a local server)."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time

import pytest

from lab_utils.data.download import DownloadError, download, partial_path

PAYLOAD = bytes(range(256)) * 400  # 100 kB


class Handler(http.server.BaseHTTPRequestHandler):
    mode = "ok"
    requests: list[str | None] = []

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802 - the http.server API
        Handler.requests.append(self.headers.get("Range"))
        if Handler.mode == "silent":
            time.sleep(3)  # accepts the connection, never answers in time
            return
        start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
        body = PAYLOAD[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if Handler.mode == "stall-once" and not start:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            time.sleep(3)  # stalls mid-file; the client's read timeout ends it and the retry resumes
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    Handler.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/train_face.h5"
    httpd.shutdown()
    httpd.server_close()


def test_a_server_that_never_answers_ends_in_a_clear_error_not_a_hang(server, tmp_path):
    Handler.mode = "silent"
    start = time.perf_counter()
    with pytest.raises(DownloadError, match="after 2 attempt\\(s\\).*download the file yourself and pass its local"):
        download(server, tmp_path / "f.h5", timeout=0.5, retries=2, pause_s=0, progress=False)
    assert time.perf_counter() - start < 60  # two 0.5 s attempts; only a hang takes this long, on any machine
    assert not (tmp_path / "f.h5").exists()


def test_a_stalled_transfer_is_resumed_where_it_stopped(server, tmp_path):
    Handler.mode = "stall-once"
    target = download(server, tmp_path / "f.h5", timeout=0.5, retries=3, pause_s=0, progress=False)
    assert target.read_bytes() == PAYLOAD
    assert Handler.requests[0] is None and Handler.requests[1] == f"bytes={len(PAYLOAD) // 2}-"
    assert not partial_path(target).exists()


def test_a_killed_download_continues_from_its_part_file(server, tmp_path):
    Handler.mode = "ok"
    target = tmp_path / "f.h5"
    partial_path(target).write_bytes(PAYLOAD[:1000])  # what a killed run left
    download(server, target, sha256=hashlib.sha256(PAYLOAD).hexdigest(), progress=False)
    assert target.read_bytes() == PAYLOAD and Handler.requests == ["bytes=1000-"]


def test_a_wrong_checksum_deletes_what_arrived(server, tmp_path):
    Handler.mode = "ok"
    with pytest.raises(ValueError, match="not the expected 0000.*deleted"):
        download(server, tmp_path / "f.h5", sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs, message", [({"retries": 0}, "retries must be an integer >= 1"),
                                             ({"timeout": 0}, "timeout must be a finite number > 0")])
def test_download_settings_that_could_never_succeed_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        download("http://127.0.0.1:9/f.h5", tmp_path / "f.h5", progress=False, **kwargs)
