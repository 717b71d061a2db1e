"""A small client for OpenAI-compatible chat servers (vLLM, Ollama, TGI, llama.cpp server).

It has the same ``generate`` signature as ``training.ml.generation.Generator``, so a model version
that points at an endpoint can stand in for a checkpoint. Standard library only.

>>> client = EndpointClient(base_url="http://127.0.0.1:8000/v1", model="my-model")  # doctest: +SKIP
>>> client.generate([[{"role": "user", "content": "Hi"}]], n=2, max_new_tokens=32,
...                 temperature=0.7, top_p=0.9, seed=0)  # doctest: +SKIP
[['Hello!', 'Hi there.']]
"""

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass


class EndpointError(Exception):
    """The endpoint could not be reached or answered something that is not a completion."""


@dataclass
class EndpointClient:
    base_url: str
    model: str
    api_key: str | None = None
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
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = self.api_key or os.environ.get("ALIGNWEB_ENDPOINT_API_KEY")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(
            self.completions_url, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read()[:500].decode("utf-8", "replace")
            raise EndpointError(f"{self.completions_url} answered HTTP {error.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise EndpointError(f"Cannot reach {self.completions_url}: {error}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise EndpointError(f"{self.completions_url} did not answer JSON: {raw[:200]!r}") from None

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
                raise EndpointError(f"Unexpected completion shape: {str(payload)[:300]}") from None
            if not new or not all(isinstance(text, str) for text in new):
                raise EndpointError(f"The endpoint returned no text: {str(payload)[:300]}")
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
