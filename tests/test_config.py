import subprocess
import sys
from pathlib import Path

import pytest

from streamer.config import ConfigError, load_config, parse_config

pytestmark = pytest.mark.unit


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "show.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_default_config_loads_and_is_offline():
    config = load_config()
    assert config.samples_per_frame == 1600
    assert [s.type for s in config.chat.sources] == ["replay", "local"]
    assert config.chat.sources[0].path.exists()


def test_wrong_type_names_file_and_key(tmp_path):
    p = write(tmp_path, "video:\n  fps: thirty\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert str(p) in str(err.value) and "video.fps" in str(err.value) and "thirty" in str(err.value)


def test_unknown_key_is_rejected(tmp_path):
    p = write(tmp_path, "video:\n  widht: 640\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert "video.widht" in str(err.value) and "unknown key" in str(err.value)


def test_samples_per_frame_must_be_integer(tmp_path):
    p = write(tmp_path, "video:\n  fps: 29\naudio:\n  sample_rate: 48000\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert "audio.sample_rate" in str(err.value) and "video.fps" in str(err.value)


def test_env_substitution_and_missing_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("STAGECAST_TEST_NAME", "Miko")
    config = parse_config({"character": {"name": "${STAGECAST_TEST_NAME}"}})
    assert config.character.name == "Miko"
    assert parse_config({"character": {"name": "${NOPE_NOT_SET:-Rin}"}}).character.name == "Rin"
    with pytest.raises(ConfigError) as err:
        parse_config({"character": {"name": "${NOPE_NOT_SET}"}}, "x.yaml")
    assert "character.name" in str(err.value) and "NOPE_NOT_SET" in str(err.value)


def test_broken_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "video: [1, 2\n"))
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "key"),
    [("video:\n  fps: 'x'\n", "video.fps"), ("bogus: 1\n", "bogus"), ("video:\n  fps: 7\n", "video.fps")],
)
def test_cli_exits_nonzero_naming_the_key(tmp_path, text, key):
    p = write(tmp_path, text)
    proc = subprocess.run([sys.executable, "-m", "streamer.cli", "check", "-c", str(p)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert key in proc.stderr and str(p) in proc.stderr
