"""Files shipped with stagecast: the default config, the demo chat, the characters, the overlays and
the panel's pages.

They are package data (the `configs` and `overlays` resource packages, the static/ folder of
`streamer.panel`) found through importlib.resources, so a checkout, an editable install and a
wheel installed anywhere resolve them alike.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _folder(package: str) -> Path:
    """The folder of a resource package on disk.

    Its files are used by path (the loader resolves a config's relative paths against its folder,
    the panel serves whole folders), so the package must be installed as files, not zipped."""
    folder = files(package)
    if not isinstance(folder, Path):
        raise RuntimeError(f"stagecast's {package} files are not on disk ({folder!r}); install stagecast unzipped")
    return folder


CONFIGS_DIR = _folder("configs")
DEFAULT_CONFIG = CONFIGS_DIR / "default.yaml"
DEMO_SPRITES = CONFIGS_DIR / "characters" / "sprite-demo"  # character.sprites when none is given
OVERLAY_DIR = _folder("overlays")
PANEL_STATIC_DIR = _folder("streamer.panel") / "static"
