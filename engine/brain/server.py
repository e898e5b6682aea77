"""What an OpenAI-compatible server can do beyond chat: its models, its tokenizer, whether it is busy.

Servers differ in the endpoints they add to the OpenAI ones, so the brain finds out once which kind it
talks to and uses what that kind has:

- llama.cpp's own server: ``GET /props`` (the chat template), ``POST /tokenize``, ``GET /slots``
  (``is_processing`` per slot; it stops generating when the client disconnects).
- llama-cpp-python's server (``/openapi.json`` titled "llama.cpp Python API"): ``POST
  /extras/tokenize/count``.  Every endpoint that touches the model, ``GET /v1/models`` included, waits
  for the one model lock, and with ``interrupt_requests`` (its default) a waiting request makes the
  running stream stop at its next token.  So ``GET /v1/models`` answering means the model is idle, and
  asking is also the cancel: an abandoned reply stops at its next token (not during prompt reading).
  The same is why nothing here is asked while a reply is streaming.
- Ollama (``GET /api/version``), LM Studio, vLLM, OpenAI: the OpenAI endpoints only.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

ServerKind = Literal["llama.cpp", "llama-cpp-python", "ollama", "openai-compatible"]


def server_root(base_url: str) -> str:
    """The server's root URL: `base_url` without its trailing ``/v1``."""
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


class ServerProblem(RuntimeError):
    """The server cannot be used at all: one line naming the URL and what is wrong."""


@dataclass
class ServerInfo:
    base_url: str
    kind: ServerKind = "openai-compatible"
    models: list[str] = field(default_factory=list)
    chat_template: str | None = None  # llama.cpp's /props only; None: the server does not say
    reached: bool = False  # some probe got an HTTP answer (else: ask again next time)

    @property
    def root(self) -> str:
        return server_root(self.base_url)


def describe_error(url: str, exc: BaseException) -> str:
    """One line for a failed request (no traceback): refused, timed out, or what aiohttp said."""
    if isinstance(exc, TimeoutError):
        return f"{url}: no answer (timed out)"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"{url}: cannot connect ({exc.os_error.strerror or exc.os_error})"
    return f"{url}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")


async def _get_json(session: aiohttp.ClientSession, url: str, timeout_s: float,
                    headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with asyncio.timeout(timeout_s):
        async with session.get(url, headers=headers) as response:
            text = await response.text()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, None


async def list_models(session: aiohttp.ClientSession, base_url: str, timeout_s: float = 5.0,
                      headers: dict[str, str] | None = None) -> list[str]:
    """``GET {base_url}/models``: the model ids; ServerProblem (one line naming the URL) otherwise."""
    url = base_url.rstrip("/") + "/models"
    try:
        status, payload = await _get_json(session, url, timeout_s, headers)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise ServerProblem(describe_error(url, exc)) from None
    if status == 404:
        raise ServerProblem(f"{url}: HTTP 404 (not an OpenAI-compatible API here: does base_url end in /v1?)")
    if status >= 400:
        raise ServerProblem(f"{url}: HTTP {status}" + (" (check the API key)" if status in (401, 403) else ""))
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise ServerProblem(f"{url}: not a model list (expected JSON with a 'data' list)")
    return [str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id")]


async def identify(session: aiohttp.ClientSession, base_url: str, timeout_s: float = 3.0) -> ServerInfo:
    """Which kind of server this is (see the module doc); unknown kinds are plain OpenAI-compatible."""
    info = ServerInfo(base_url)
    root = info.root
    probes: list[tuple[str, ServerKind]] = [("/props", "llama.cpp"), ("/openapi.json", "llama-cpp-python"),
                                            ("/api/version", "ollama")]
    for path, kind in probes:
        try:
            status, payload = await _get_json(session, root + path, timeout_s)
        except (TimeoutError, aiohttp.ClientError, OSError):
            continue
        info.reached = True
        if status != 200 or not isinstance(payload, dict):
            continue
        if kind == "llama.cpp" and ("default_generation_settings" in payload or "chat_template" in payload):
            info.kind, info.chat_template = kind, str(payload.get("chat_template") or "")
            return info
        if kind == "llama-cpp-python" and "llama.cpp Python" in str(payload.get("info", {}).get("title", "")):
            info.kind = kind
            return info
        if kind == "ollama" and "version" in payload:
            info.kind = kind
            return info
    return info


async def count_tokens(session: aiohttp.ClientSession, info: ServerInfo, text: str,
                       timeout_s: float = 5.0) -> int | None:
    """The server's own token count for `text`, or None when it has no tokenizer endpoint (or failed)."""
    if info.kind == "llama-cpp-python":
        url, body, key = info.root + "/extras/tokenize/count", {"input": text}, "count"
    elif info.kind == "llama.cpp":
        url, body, key = info.root + "/tokenize", {"content": text}, "tokens"
    else:
        return None
    try:
        async with asyncio.timeout(timeout_s):
            async with session.post(url, json=body) as response:
                if response.status != 200:
                    return None
                payload = await response.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
        return None
    value = payload.get(key) if isinstance(payload, dict) else None
    if isinstance(value, list):
        return len(value)
    return value if isinstance(value, int) else None


async def wait_idle(session: aiohttp.ClientSession, info: ServerInfo, timeout_s: float,
                    headers: dict[str, str] | None = None) -> bool:
    """Wait until the server has no reply in progress (True), or `timeout_s` passes (False).

    llama-cpp-python: ``GET /v1/models`` answers once the model lock is free (and makes a running
    stream stop at its next token).  llama.cpp: poll ``/slots`` until no slot is processing.  Other
    servers cannot say, and handle requests side by side or cancel on disconnect: True at once."""
    try:
        async with asyncio.timeout(timeout_s):
            if info.kind == "llama-cpp-python":
                await _get_json(session, info.base_url.rstrip("/") + "/models", timeout_s, headers)
                return True
            if info.kind == "llama.cpp":
                while True:
                    status, slots = await _get_json(session, info.root + "/slots", timeout_s)
                    if status != 200 or not isinstance(slots, list):
                        return True  # slots endpoint disabled: nothing to wait on
                    if not any(isinstance(s, dict) and s.get("is_processing") for s in slots):
                        return True
                    await asyncio.sleep(0.2)
            return True
    except TimeoutError:
        return False
    except (aiohttp.ClientError, OSError):
        return True  # not busy but broken: the request itself will say what is wrong
