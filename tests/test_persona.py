"""The persona builds the per-turn system prompt: language rule, allowed tags, memory."""

import pytest

from engine.brain.base import HistoryEntry, Prompt
from engine.brain.persona import Persona

pytestmark = pytest.mark.unit


def test_system_prompt_names_the_language_tags_and_memory():
    persona = Persona(name="Mika", catchphrases=("Let's go!",), emotions=("joy", "sorrow"))
    text = persona.build_system_prompt("ja", context="alex is a returning viewer.")
    assert "Mika" in text and "Answer in Japanese only (ja)" in text
    assert "[joy], [sorrow]" in text and "[anger]" not in text
    assert "Let's go!" in text and "alex is a returning viewer." in text


def test_unsupported_language_falls_back_to_the_first():
    assert "Answer in English" in Persona(languages=("en",)).build_system_prompt("zh")


def test_messages_keep_recent_history_only():
    persona = Persona(max_history=2)
    history = [HistoryEntry("viewer", "a", "one"), HistoryEntry("character", "Aiko", "two"),
               HistoryEntry("viewer", "b", "three")]
    msgs = persona.build_messages(Prompt("hi", "en", "c"), history)
    assert [m["role"] for m in msgs] == ["system", "assistant", "user", "user"]
    assert msgs[-1]["content"] == "c: hi" and msgs[2]["content"] == "b: three"


def test_bad_persona_data_is_rejected():
    with pytest.raises(ValueError, match="unknown persona keys"):
        Persona.from_dict({"name": "x", "nmae": "y"})
    with pytest.raises(ValueError, match="not avatar emotions"):
        Persona.from_dict({"emotions": ["joy", "smug"]})
    assert Persona.from_dict({"languages": ["ja", "en"]}).languages == ("ja", "en")


def test_the_shipped_character_persona_loads():
    from pathlib import Path

    persona = Persona.load(Path(__file__).resolve().parent.parent / "configs/characters/aiko/persona.yaml")
    assert persona.name == "Aiko" and persona.languages == ("en", "zh", "ja")
