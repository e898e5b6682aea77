"""`stagecast check` for the `openai` brain: is the server there, which model, does the persona reach it.

``GET {base_url}/models`` must answer with a model list: anything else is one line naming the URL (the
show would otherwise fail every turn).  With ``--chat`` two 1-token chat requests follow, one with a
system message and one without: when the server reports the same ``usage.prompt_tokens`` for both,
it drops system messages (llama-cpp-python's ``gemma`` chat format does), and the persona only
reaches the model with ``system_mode: fold``.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from engine.brain.server import ServerProblem, describe_error, identify, list_models
from streamer.config.character import OpenAIBrainConfig

_PROBE_SYSTEM = "You are a test persona. " * 20  # long enough that its tokens cannot hide in rounding


@dataclass
class LLMCheck:
    ok: bool
    lines: list[str] = field(default_factory=list)  # "  [yes] ..." style lines, or one "error: ..." line


def _headers(config: OpenAIBrainConfig) -> dict[str, str]:
    key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""
    return {"Authorization": f"Bearer {key}"} if key else {}


async def _prompt_tokens(session: aiohttp.ClientSession, url: str, body: dict[str, Any],
                         headers: dict[str, str], timeout_s: float) -> int | None:
    """usage.prompt_tokens of a 1-token, non-streamed reply; ServerProblem when the route fails."""
    try:
        async with asyncio.timeout(timeout_s):
            async with session.post(url, json=body, headers=headers) as response:
                if response.status >= 400:
                    text = (await response.text())[:200].replace("\n", " ")
                    raise ServerProblem(f"{url}: HTTP {response.status} {text}")
                payload = await response.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        raise ServerProblem(describe_error(url, exc)) from None
    usage = payload.get("usage") if isinstance(payload, dict) else None
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return tokens if isinstance(tokens, int) else None


async def check_llm(config: OpenAIBrainConfig, chat: bool = False, timeout_s: float = 10.0) -> LLMCheck:
    headers = _headers(config)
    async with aiohttp.ClientSession() as session:
        try:
            models = await list_models(session, config.base_url, timeout_s, headers)
        except ServerProblem as exc:
            return LLMCheck(False, [f"error: openai brain: {exc}"])
        info = await identify(session, config.base_url, timeout_s=3.0)
        out = LLMCheck(True)
        known = config.model in models
        out.lines.append(f"  [{'yes' if known or not models else 'no '}] {'llm server':34s} {info.kind} at "
                         f"{config.base_url}, models: {', '.join(models) or 'none listed'}")
        if models and not known:
            out.lines.append(f"  warning: model {config.model!r} is not among the server's models; "
                             "llama-cpp-python answers with its one model anyway, Ollama and others refuse")
        if info.chat_template == "":
            out.lines.append("  warning: the model has no chat template: start the server with a chat format "
                             "(llama.cpp: --chat-template gemma) or replies will be garbled")
        if not chat:
            return out
        url = config.base_url.rstrip("/") + "/chat/completions"
        user = {"role": "user", "content": "hi"}
        body: dict[str, Any] = {"model": config.model, "max_tokens": 1, "temperature": 0, "stream": False}
        try:
            bare = await _prompt_tokens(session, url, {**body, "messages": [user]}, headers, timeout_s)
            with_system = await _prompt_tokens(
                session, url, {**body, "messages": [{"role": "system", "content": _PROBE_SYSTEM}, user]},
                headers, timeout_s)
        except ServerProblem as exc:
            return LLMCheck(False, [*out.lines, f"error: openai brain: chat route: {exc}"])
        out.lines.append(f"  [yes] {'llm chat route':34s} answers a 1-token request")
        if bare is None or with_system is None:
            out.lines.append("  note: the server reports no usage; cannot tell whether it keeps system messages")
        elif with_system <= bare:
            hint = "" if config.system_mode == "fold" else "; set character.openai.system_mode: fold"
            out.lines.append(f"  warning: the server drops system messages (the persona would not reach the "
                             f"model){hint}")
        return out


def run_llm_check(config: OpenAIBrainConfig, chat: bool = False) -> LLMCheck:
    return asyncio.run(check_llm(config, chat))
