"""The procedural look comes from the character pack: presets, inline fields, look files, clear errors."""

from pathlib import Path

import pytest
import torch

from engine.render.procedural.look import LOOKS
from engine.state import neutral_state
from streamer.assembly import build_renderer
from streamer.config import ConfigError, load_config, parse_config

pytestmark = pytest.mark.unit


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_look_file_relative_to_the_config_and_based_on_a_preset(tmp_path: Path) -> None:
    (tmp_path / "pack").mkdir()
    write(tmp_path / "pack" / "look.yaml", 'preset: bob\niris: "#22aa44"\neye_size: 1.2\n')
    config = load_config(write(tmp_path / "show.yaml", "character:\n  look: pack/look.yaml\n"))
    look = build_renderer(parse_config({"video": {"width": 64, "height": 64},
                                        "character": {"look": config.character.look}})).look
    assert look.hair_style == "bob" and look.iris == (34, 170, 68) and look.eye_size == 1.2
    assert look.hair == LOOKS["bob"].hair  # untouched fields come from the preset


def test_the_look_changes_the_picture() -> None:
    frames = {}
    for name in ("default", "bob"):
        r = build_renderer(parse_config({"video": {"width": 96, "height": 96}, "character": {"look": name}}))
        frames[name] = r.render(neutral_state().unsqueeze(0))
    assert not torch.equal(frames["default"], frames["bob"])


@pytest.mark.parametrize(
    ("look", "expected"),
    [
        ({"irs": "#ffffff"}, "unknown look field(s) irs"),
        ({"iris": "#12"}, "iris: color '#12'"),
        ({"iris": [1, 2]}, "iris: color [1, 2]"),
        ({"eye_size": "big"}, "eye_size must be a number"),
        ({"eye_size": 9}, "eye_size must be within"),
        ({"preset": "punk"}, "unknown look preset 'punk'"),
        ({"hair_style": "mohawk"}, "unknown hair_style 'mohawk'"),
        ("punk", "unknown look preset 'punk'"),
    ],
)
def test_bad_inline_looks_name_the_key(look: object, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"character": {"look": look}})
    assert "character.look" in str(err.value) and expected in str(err.value)


def test_bad_look_files_name_the_file(tmp_path: Path) -> None:
    show = write(tmp_path / "show.yaml", "character:\n  look: missing.yaml\n")
    with pytest.raises(ConfigError) as err:
        load_config(show)
    assert "character.look" in str(err.value) and str(tmp_path / "missing.yaml") in str(err.value)
    write(tmp_path / "look.yaml", 'iris: "#12"\n')
    write(show, "character:\n  look: look.yaml\n")
    with pytest.raises(ConfigError) as err:
        load_config(show)
    assert str(tmp_path / "look.yaml") in str(err.value) and "iris" in str(err.value)
    write(tmp_path / "look.yaml", "- just\n- a list\n")
    with pytest.raises(ConfigError) as err:
        load_config(show)
    assert "a mapping of look fields" in str(err.value)
