"""A small client for OpenAI-compatible chat servers (vLLM, Ollama, TGI, llama.cpp server).

It has the same ``generate`` signature as ``training.ml.generation.Generator``, so a model version
that points at an endpoint can stand in for a checkpoint. Standard library only (plus the
project's ``training.endpoint_guard``): every request is checked again and sent to the address
that was checked, redirects are not followed, and an error shows the status, never the body.
The API key is the caller's to choose (``training.endpoint_keys.api_key_for``); it is sent only in
the ``Authorization`` header and kept out of the client's repr.

>>> client = EndpointClient(base_url="http://127.0.0.1:8000/v1", model="my-model")  # doctest: +SKIP
>>> client.generate([[{"role": "user", "content": "Hi"}]], n=2, max_new_tokens=32,
...                 temperature=0.7, top_p=0.9, seed=0)  # doctest: +SKIP
[['Hello!', 'Hi there.']]
"""

import http.client
import json
import logging
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from training.endpoint_guard import CheckedEndpoint, EndpointRefused, endpoint_url_check

logger = logging.getLogger(__name__)


class EndpointError(Exception):
    """The endpoint could not be reached or answered something that is not a completion."""


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to the checked address, with SNI and the certificate checked against the host name."""

    def __init__(self, endpoint: CheckedEndpoint, *, timeout: float) -> None:
        super().__init__(
            endpoint.address, endpoint.port, timeout=timeout, context=ssl.create_default_context()
        )
        self._server_hostname = endpoint.host

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_hostname)


def _connection(endpoint: CheckedEndpoint, *, timeout: float) -> http.client.HTTPConnection:
    if endpoint.scheme == "https":
        return _PinnedHTTPSConnection(endpoint, timeout=timeout)
    return http.client.HTTPConnection(endpoint.address, endpoint.port, timeout=timeout)


@dataclass
class EndpointClient:
    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 120.0

    @property
    def completions_url(self) -> str:
        base = self.base_url.rstrip("/")
        if base.endswith("/chat/completions"):
            return base
        if not base.endswith("/v1"):
            base += "/v1"
        return base + "/chat/completions"

    def _post(self, body: dict) -> dict:
        url = self.completions_url
        try:
            endpoint = endpoint_url_check(url)
        except EndpointRefused as refused:
            raise EndpointError(refused.message) from None
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        default_port = 443 if endpoint.scheme == "https" else 80
        host_header = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
        if endpoint.port != default_port:
            host_header += f":{endpoint.port}"
        headers = {"Host": host_header, "Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        shown = f"{endpoint.scheme}://{host_header}{parts.path}"
        connection = _connection(endpoint, timeout=self.timeout)
        try:
            connection.request("POST", path, body=json.dumps(body).encode(), headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except (http.client.HTTPException, OSError) as error:
            raise EndpointError(f"Cannot reach {shown}: {type(error).__name__}") from None
        finally:
            connection.close()
        if response.status != 200:
            # The body stays in the server's log: it may be anything the far side chose to say.
            logger.debug("%s answered HTTP %s: %r", shown, response.status, raw[:500])
            if 300 <= response.status < 400:
                raise EndpointError(f"{shown} answered HTTP {response.status} (redirects are not followed).")
            raise EndpointError(f"{shown} answered HTTP {response.status}.")
        try:
            return json.loads(raw)
        except ValueError:
            logger.debug("%s did not answer JSON: %r", shown, raw[:500])
            raise EndpointError(f"{shown} did not answer JSON.") from None

    def chat(
        self,
        messages: list[dict],
        *,
        n: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        seed: int,
    ) -> list[str]:
        """``n`` completions of one conversation. Servers that ignore ``n`` (Ollama) are asked
        again with the next seeds until there are ``n``."""
        texts: list[str] = []
        attempt = 0
        while len(texts) < n:
            payload = self._post(
                {
                    "model": self.model,
                    "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
                    "n": n - len(texts),
                    "max_tokens": max_new_tokens,
                    "temperature": temperature,
                    "top_p": top_p,
                    "seed": seed + attempt,
                }
            )
            try:
                choices = payload["choices"]
                new = [choice["message"]["content"] for choice in choices]
            except (KeyError, TypeError, IndexError):
                logger.debug("Unexpected completion shape: %.500s", payload)
                raise EndpointError("The endpoint answered JSON that is not a chat completion.") from None
            if not new or not all(isinstance(text, str) for text in new):
                logger.debug("No text in the completion: %.500s", payload)
                raise EndpointError("The endpoint returned no text.")
            texts.extend(new)
            attempt += 1
        return texts[:n]

    def generate(
        self,
        prompts: list[list[dict]],
        *,
        n: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        seed: int,
    ) -> list[list[str]]:
        return [
            self.chat(
                messages,
                n=n,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                top_p=top_p,
                seed=seed + i,
            )
            for i, messages in enumerate(prompts)
        ]
