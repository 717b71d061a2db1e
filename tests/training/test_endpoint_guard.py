"""A model version's endpoint cannot make the server call its own network (issue #15, SSRF):
refused at registration and again at every connection, redirects not followed, bodies not shown."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from rest_framework.test import APIClient

from tests.training.helpers import ModelVersionFactory
from training.endpoint import EndpointClient, EndpointError
from training.endpoint_guard import REFUSED, EndpointRefused, endpoint_url_check
from training.models import ModelVersion

PUBLIC = "93.184.216.34"

INTERNAL_URLS = [
    "http://127.0.0.1:8000/v1",
    "http://localhost/v1",
    "http://0x7f000001/v1",  # hex
    "http://2130706433/v1",  # decimal
    "http://017700000001/v1",  # octal
    "http://127.1/v1",
    "http://0.0.0.0/v1",  # unspecified
    "http://10.0.0.1/v1",
    "http://172.16.5.4/v1",
    "http://192.168.1.1/v1",
    "http://100.64.0.1/v1",  # carrier-grade NAT
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://169.254.1.1/v1",  # link-local
    "http://224.0.0.1/v1",  # multicast
    "http://240.0.0.1/v1",  # reserved
    "http://[::1]/v1",
    "http://[::]/v1",
    "http://[::ffff:127.0.0.1]/v1",  # IPv4-mapped
    "http://[::ffff:10.0.0.1]/v1",
    "http://[::127.0.0.1]/v1",  # IPv4-compatible
    "http://[fd00:ec2::254]/v1",  # AWS metadata over IPv6
    "http://[fc00::1]/v1",  # unique local
    "http://[fe80::1]/v1",  # link-local
    "http://[ff02::1]/v1",  # multicast
    "http://[2002:7f00:1::]/v1",  # 6to4 around 127.0.0.1
    "http://user:pw@93.184.216.34/v1",  # credentials in the URL
    "http://no-such-host.invalid/v1",  # does not resolve
]


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def resolving_to(monkeypatch, address: str) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    answer = [(family, socket.SOCK_STREAM, 6, "", (address, 80))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: answer)


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_every_internal_address_is_refused_at_registration_with_one_message(project, project_admin, url):
    response = api(project_admin).post(
        f"/api/projects/{project.slug}/model-versions/",
        {"name": "remote", "endpoint_url": url, "endpoint_model": "m"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"errors": {"endpoint_url": [REFUSED]}}
    assert not ModelVersion.objects.filter(project=project, name="remote").exists()


def test_a_public_address_is_registered(project, project_admin, monkeypatch):
    resolving_to(monkeypatch, PUBLIC)
    response = api(project_admin).post(
        f"/api/projects/{project.slug}/model-versions/",
        {"name": "remote", "endpoint_url": "https://llm.example.com/v1", "endpoint_model": "m"},
        format="json",
    )
    assert response.status_code == 201


def test_a_name_with_one_internal_address_among_public_ones_is_refused(monkeypatch):
    answer = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, 80)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 80)),
    ]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: answer)
    with pytest.raises(EndpointRefused):
        endpoint_url_check("http://llm.example.com/v1")


def test_the_operator_lets_a_named_host_in(settings):
    settings.ALIGNWEB_ENDPOINT_ALLOWED_HOSTS = ["localhost"]
    checked = endpoint_url_check("http://LocalHost:11434/v1")
    assert (checked.host, checked.port) == ("localhost", 11434)
    assert checked.address in ("127.0.0.1", "::1")
    with pytest.raises(EndpointRefused):
        endpoint_url_check("http://127.0.0.1:11434/v1")  # the allowlist names hosts, not addresses


def test_a_host_that_resolves_inside_at_connection_time_is_refused(project, monkeypatch):
    version = ModelVersionFactory(project=project, base_model="", endpoint_url="http://llm.example.com/v1")
    resolving_to(monkeypatch, "10.0.0.1")  # DNS rebinding: public when registered, internal now
    connected = []
    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: connected.append(args))
    with pytest.raises(EndpointError, match="not allowed"):
        EndpointClient(base_url=version.endpoint_url, model="m").chat(
            [{"role": "user", "content": "hi"}], n=1, max_new_tokens=8, temperature=0.5, top_p=1.0, seed=0
        )
    assert connected == []


class _Handler(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        _Handler.hits.append(self.path)
        if self.path.startswith("/redirect/"):
            self.send_response(307)
            self.send_header("Location", "/secret/v1/chat/completions")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/secret/"):  # a client that followed the redirect would succeed here
            body = b'{"choices": [{"message": {"role": "assistant", "content": "internal"}}]}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        body = b"internal stack trace: password=hunter2"
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server(settings):
    settings.ALIGNWEB_ENDPOINT_ALLOWED_HOSTS = ["127.0.0.1"]
    _Handler.hits = []
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def ask(base_url: str) -> None:
    EndpointClient(base_url=base_url, model="m", timeout=5).chat(
        [{"role": "user", "content": "hi"}], n=1, max_new_tokens=8, temperature=0.5, top_p=1.0, seed=0
    )


def test_a_redirect_is_an_error_and_is_not_followed(local_server):
    with pytest.raises(EndpointError, match="HTTP 307"):
        ask(f"{local_server}/redirect/v1")
    assert _Handler.hits == ["/redirect/v1/chat/completions"]


def test_the_body_of_an_error_never_reaches_the_user(local_server):
    with pytest.raises(EndpointError, match="HTTP 500") as raised:
        ask(f"{local_server}/v1")
    assert "hunter2" not in str(raised.value) and "stack trace" not in str(raised.value)
