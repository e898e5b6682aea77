"""The cache-friendly prompt: a stable prefix, turns that only grow between compaction steps, the
persona folded into the first user message for servers that drop system messages, token counting."""

from __future__ import annotations

import asyncio
import re

import pytest

from engine.brain.base import HistoryEntry, Prompt
from engine.brain.persona import Persona
from engine.brain.prompt import PromptBuilder, TokenCounter, estimate_tokens

pytestmark = pytest.mark.unit


def show_history(turns: int) -> list[HistoryEntry]:
    out: list[HistoryEntry] = []
    for i in range(turns):
        out.append(HistoryEntry("viewer", f"v{i % 3}", f"message number {i}, with a few more words to it"))
        out.append(HistoryEntry("character", "Aiko", f"Reply number {i}. It has two short sentences."))
    return out


def build_all(builder: PromptBuilder, history: list[HistoryEntry], prompts: list[Prompt]):
    async def main():
        built = []
        for i, prompt in enumerate(prompts):
            built.append(await builder.build(prompt, history[: 2 * i]))
        return built

    return asyncio.run(main())


def common_prefix(a: list[dict[str, str]], b: list[dict[str, str]]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def test_turns_only_grow_between_compaction_steps_and_the_system_text_holds_still():
    history = show_history(40)
    prompts = [Prompt(f"question {i}", "ja" if i % 5 == 0 else "en", f"v{i % 3}", "") for i in range(40)]
    builder = PromptBuilder(Persona(), history_tokens=400, summary_tokens=120)
    built = build_all(builder, history, prompts)
    steps = [i for i, b in enumerate(built) if b.compacted]
    assert 2 <= len(steps) <= 8  # compacted in steps, not slid every turn
    for i in range(1, len(built)):
        before, now = built[i - 1].messages, built[i].messages
        if built[i].compacted:
            assert now[0] != before[0]  # the summary grew
            continue
        # everything but the previous turn's last message (it carried that turn's note) is reused as is
        assert common_prefix(before, now) >= len(before) - 1
        assert now[0] == before[0]
    assert all(b.tokens <= 400 + 120 + 400 for b in built)  # recent budget + summary + persona/turn
    last = built[-1].messages
    assert "Earlier in this stream (summary):" in last[0]["content"]
    assert "v0: message number 0" not in last[0]["content"]  # the oldest summary lines went over its budget


def test_language_and_memory_travel_with_the_viewers_message_not_the_prefix():
    builder = PromptBuilder(Persona())

    async def main():
        ja = await builder.build(Prompt("こんにちは", "ja", "kenji", "u1"), [], context="kenji likes astronomy")
        en = await builder.build(Prompt("hi", "en", "sam", "u2"), [])
        return ja, en

    ja, en = asyncio.run(main())
    assert ja.messages[0] == en.messages[0]  # the system text does not depend on the viewer
    assert "Answer in Japanese only (ja)" in ja.messages[-1]["content"]
    assert "astronomy" in ja.messages[-1]["content"] and ja.messages[-1]["content"].endswith("kenji: こんにちは")
    assert en.messages[-1]["content"] == "sam: hi"  # the persona's first language needs no note
    assert en.new_tokens < en.tokens  # the system message is shared with the last prompt


def test_fold_puts_the_persona_in_the_first_user_message():
    persona = Persona()
    history = [HistoryEntry("character", "Aiko", "Welcome back everyone!"), *show_history(2)]

    async def main():
        empty = await PromptBuilder(persona, system_mode="fold").build(Prompt("hi", "en", "sam"), [])
        opened = await PromptBuilder(persona, system_mode="fold").build(Prompt("hi", "en", "sam"), history)
        return empty, opened

    empty, opened = asyncio.run(main())
    system = persona.stable_system_prompt()
    assert [m["role"] for m in empty.messages] == ["user"]
    assert empty.messages[0]["content"] == f"{system}\n\nsam: hi"
    assert all(m["role"] != "system" for m in opened.messages)
    assert opened.messages[0] == {"role": "user", "content": system}  # the history opens with the character
    roles = [m["role"] for m in opened.messages]
    assert roles[:3] == ["user", "assistant", "user"]


def test_counter_uses_the_server_once_per_text_and_estimates_after_a_failure():
    calls: list[str] = []

    async def remote(text: str) -> int | None:
        calls.append(text)
        return None if text == "broken" else 7

    async def main():
        counter = TokenCounter(remote)
        first = [await counter.count("hello"), await counter.count("hello")]
        after = [await counter.count("broken"), await counter.count("other text")]
        return counter, first, after

    counter, first, after = asyncio.run(main())
    assert first == [7, 7] and calls == ["hello", "broken"]  # cached; no more remote calls after it failed
    assert after == [estimate_tokens("broken"), estimate_tokens("other text")] and not counter.exact
    assert estimate_tokens("こんにちは") == 5 and 3 <= estimate_tokens("hello there friend") <= 6


def test_viewer_names_and_words_reach_the_model_without_tag_syntax_in_turns_and_summary():
    """A model that repeats a viewer would otherwise say their `[angry]`: the character's emotion is its own."""
    history: list[HistoryEntry] = []
    for i in range(30):
        history.append(HistoryEntry("viewer", "[angry:1.0] Bob", f"be [sad] now, number {i} [fear:0.9]"))
        history.append(HistoryEntry("character", "Aiko", f"Reply number {i}."))
    builder = PromptBuilder(Persona(), history_tokens=300, summary_tokens=200)
    prompts = [Prompt(f"[angry] question {i} [joy:1]", "en", "[surprise] Eve", "") for i in range(30)]
    built = build_all(builder, history, prompts)
    assert any(b.compacted for b in built) and builder.summary_lines
    tag = re.compile(r"\[(" + "|".join(Persona().emotions) + r")(:[0-9.]+)?\]")
    for b in built:
        viewer = [m["content"] for m in b.messages if m["role"] == "user"]
        assert viewer and not [c for c in viewer if tag.search(c)], viewer
    assert not [line for line in builder.summary_lines if tag.search(line)], builder.summary_lines
    last = built[-1].messages[-1]["content"]
    assert last == "surprise Eve: angry question 29 joy:1", last  # the words stay, the brackets go
