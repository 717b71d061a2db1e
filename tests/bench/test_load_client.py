"""The load bench's lean HTTP client reads what a real server sends: lengths, chunks, closes."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.annotation_load import KeepAliveClient


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    accepted = 0  # connections, counted by the server as it takes them

    def setup(self):
        super().setup()
        Handler.accepted += 1

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = json.dumps(
            {"path": self.path, "body": body.decode(), "auth": self.headers["Authorization"]}
        ).encode()
        if self.path == "/garbage":
            self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
            self.close_connection = True
            return
        if self.path == "/unsized":  # no length, no chunks: the body ends when the connection does
            self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + answer)
            self.close_connection = True
            return
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (answer[:5], answer[5:]):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")
            return
        self.send_response(204 if self.path == "/empty" else 201)
        if self.path == "/close":
            self.send_header("Connection", "close")
            self.close_connection = True
        if self.path != "/empty":
            self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        if self.path != "/empty":
            self.wfile.write(answer)


@pytest.fixture
def port():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Handler.accepted = 0
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_it_keeps_one_connection_and_reads_lengths_chunks_and_empty_answers(port):
    client = KeepAliveClient(port, {"Authorization": "Token abc"})

    status, data = client.post("/next", b"")
    assert status == 201
    assert json.loads(data) == {"path": "/next", "body": "", "auth": "Token abc"}
    assert client.post("/empty") == (204, b"")
    status, data = client.post("/chunked", b'{"choice": "left"}')
    assert status == 200
    assert json.loads(data)["body"] == '{"choice": "left"}'  # trailer read past, not into the next
    assert client.post("/next", b"x")[0] == 201

    assert Handler.accepted == 1  # keep-alive throughout
    client.close()


def test_it_reconnects_after_the_server_closes(port):
    client = KeepAliveClient(port, {"Authorization": "Token abc"})

    assert client.post("/close")[0] == 201
    status, data = client.post("/unsized", b"u")
    assert status == 200
    assert json.loads(data)["body"] == "u"
    assert client.post("/next")[0] == 201

    assert Handler.accepted == 3


def test_a_failed_answer_leaves_no_half_read_connection_behind(port):
    client = KeepAliveClient(port, {"Authorization": "Token abc"})

    with pytest.raises(ValueError):
        client.post("/garbage")
    status, data = client.post("/next", b"after")

    assert status == 201
    assert json.loads(data)["body"] == "after"
    assert Handler.accepted == 2
    client.close()
