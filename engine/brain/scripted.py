"""The `scripted` brain: a small deterministic persona that greets, answers simple questions and
copes with anything else, in the viewer's language. The offline default, and a stable fixture."""

from __future__ import annotations

import asyncio
import re
import zlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from engine.brain.base import HistoryEntry, Prompt
from engine.brain.tags import spoken_name
from engine.lifecycle import Lifecycle


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    replies: tuple[str, ...]


def _rules(table: list[tuple[str, tuple[str, ...]]]) -> list[_Rule]:
    return [_Rule(re.compile(p, re.IGNORECASE), r) for p, r in table]


# {name} is the character, {user} the viewer. Tags in brackets are emotions, never spoken.
_EN = _rules(
    [
        (r"\b(hello|hi|hey|good (morning|evening|afternoon)|yo)\b",
         ("[joy] Hi {user}! Welcome to the stream, make yourself at home.",
          "[joy] Hey {user}, great to see you here! How is your day going?")),
        (r"how are you|how's it going|how are things",
         ("[joy] I'm doing great, thanks for asking {user}! Chatting with all of you is the best part.",)),
        (r"your name|who are you",
         ("[fun] I'm {name}, your always-on stream host. I never sleep, so keep the questions coming!",)),
        (r"where are you from|where do you live",
         ("[fun] I live right here on the stream, somewhere between the pixels and the chat.",)),
        (r"favou?rite|do you like|what do you like",
         ("[joy] I love good conversations, cozy music and people who say hi in chat.",)),
        (r"\b(sad|tired|bad day|lonely)\b",
         ("[sorrow] Oh no, I'm sorry to hear that {user}. Stick around, we'll cheer you up together.",)),
        (r"\b(wow|amazing|awesome|cool)\b",
         ("[surprise] Wow, thank you {user}! That really made my day.",)),
        (r"\b(bye|good ?night|see you)\b",
         ("[joy] Bye {user}, thanks for hanging out! See you next time.",)),
        (r"\?$",
         ("[fun] Ooh, good question {user}. Let me think about that one while we chat.",
          "Hmm, that's a tricky one {user}! What do the rest of you think?")),
    ]
)
_EN_UNKNOWN = (
    "Thanks for the message {user}! Tell me more.",
    "[fun] Ha, I like that, {user}. Chat, what do you think?",
    "Interesting, {user}! I'm listening.",
)

_ZH = _rules(
    [
        (r"你好|您好|大家好|哈喽|嗨", ("[joy] {user}你好！欢迎来到直播间。", "[joy] 嗨，{user}！很高兴见到你。")),
        (r"你好吗|怎么样|还好吗", ("[joy] 我很好，谢谢{user}的关心！",)),
        (r"名字|你是谁|叫什么", ("[fun] 我是{name}，一直在线的主播！",)),
        (r"喜欢|爱好", ("[joy] 我喜欢聊天、音乐，还有和大家一起玩。",)),
        (r"难过|累|伤心", ("[sorrow] 抱歉听到这个，{user}。留下来，我们一起开心一下。",)),
        (r"再见|拜拜|晚安", ("[joy] 再见{user}，谢谢你来看直播！",)),
        (r"[?？吗]$", ("[fun] 好问题，{user}！让我想一想。",)),
    ]
)
_ZH_UNKNOWN = ("谢谢你的留言，{user}！", "[fun] 哈哈，有意思，{user}！")

_JA = _rules(
    [
        (r"こんにちは|こんばんは|おはよう|やあ|はじめまして",
         ("[joy] {user}さん、こんにちは！配信へようこそ。", "[joy] {user}さん、来てくれてありがとう！")),
        (r"元気", ("[joy] 元気です！{user}さん、ありがとう。",)),
        (r"名前|誰", ("[fun] わたしは{name}です。ずっと配信しています！",)),
        (r"好き", ("[joy] おしゃべりと音楽が大好きです。",)),
        (r"悲しい|疲れ|つらい", ("[sorrow] それは大変でしたね、{user}さん。ゆっくりしていってね。",)),
        (r"さようなら|またね|おやすみ", ("[joy] {user}さん、またね！見てくれてありがとう。",)),
        (r"[?？か]$", ("[fun] いい質問ですね、{user}さん！",)),
    ]
)
_JA_UNKNOWN = ("メッセージありがとう、{user}さん！", "[fun] おもしろいですね、{user}さん！")

_TABLES = {"en": (_EN, _EN_UNKNOWN), "zh": (_ZH, _ZH_UNKNOWN), "ja": (_JA, _JA_UNKNOWN)}


class ScriptedBrain(Lifecycle):
    """Deterministic: the same prompt always gets the same reply (chosen by a stable hash)."""

    def __init__(self, name: str = "Aiko", chunk_delay_s: float = 0.0) -> None:
        self.name = name
        self.chunk_delay_s = chunk_delay_s

    def compose(self, prompt: Prompt) -> str:
        rules, unknown = _TABLES.get(prompt.language, _TABLES["en"])
        text = prompt.text.strip()
        choices = unknown
        for rule in rules:
            if rule.pattern.search(text):
                choices = rule.replies
                break
        pick = choices[zlib.crc32(text.encode("utf-8")) % len(choices)]
        user = spoken_name(prompt.user_name) or "friend"  # never a tag, never a 200-character recital
        return pick.format(user=user, name=self.name)

    async def reply(self, prompt: Prompt, history: list[HistoryEntry]) -> AsyncGenerator[str, None]:
        """Stream the reply word by word, the way a real model would."""
        text = self.compose(prompt)
        for piece in re.findall(r"\S+\s*|\s+", text):
            if self.chunk_delay_s:
                await asyncio.sleep(self.chunk_delay_s)
            yield piece
