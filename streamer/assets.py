"""Files shipped with stagecast: the default config, the demo chat, the characters, the overlays."""

from __future__ import annotations

from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
CONFIGS_DIR = _ROOT / "configs"
DEFAULT_CONFIG = CONFIGS_DIR / "default.yaml"
DEMO_SPRITES = CONFIGS_DIR / "characters" / "sprite-demo"  # character.sprites when none is given
OVERLAY_DIR = _ROOT / "overlays"
