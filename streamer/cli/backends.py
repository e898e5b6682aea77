"""`stagecast check`: which backends can run on this machine, and why not."""

from __future__ import annotations

import importlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from streamer.assets import DEMO_SPRITES


@dataclass(frozen=True)
class BackendStatus:
    name: str
    usable: bool
    detail: str


def _module(name: str) -> tuple[ModuleType | None, str]:
    try:
        return importlib.import_module(name), ""
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}".splitlines()[0]


def _torch() -> list[BackendStatus]:
    torch, err = _module("torch")
    if torch is None:
        return [BackendStatus("torch", False, err)]
    out = [BackendStatus("torch (CPU)", True, f"torch {torch.__version__}, {torch.get_num_threads()} threads")]
    if torch.cuda.is_available():
        out.append(BackendStatus("torch (CUDA)", True, torch.cuda.get_device_name(0)))
    else:
        out.append(BackendStatus("torch (CUDA)", False, "no CUDA device visible to torch"))
    return out


def _espeak() -> list[BackendStatus]:
    try:
        from engine.voice.espeak import EspeakVoice

        voice = EspeakVoice()
        out = []
        for lang, text in (("en", "ok"), ("zh", "好"), ("ja", "はい")):
            speech = voice.synthesize(text, lang)
            out.append(BackendStatus(f"voice espeak [{lang}]", speech.samples > 0, f"{speech.samples} samples"))
        return out
    except Exception as exc:
        return [BackendStatus("voice espeak", False, str(exc).splitlines()[0])]


def _av() -> list[BackendStatus]:
    av, err = _module("av")
    if av is None:
        return [BackendStatus("PyAV", False, err)]
    codecs = av.codecs_available
    out = [BackendStatus("PyAV", True, f"av {av.__version__}")]
    for codec in ("libx264", "aac"):
        out.append(BackendStatus(f"encoder {codec}", codec in codecs, "" if codec in codecs else "not in this FFmpeg"))
    nvenc = "h264_nvenc" in codecs
    out.append(BackendStatus("encoder h264_nvenc", False if not nvenc else True,
                             "compiled in; needs an NVIDIA GPU and driver at run time" if nvenc else "not compiled in"))
    return out


def _optional(module: str, label: str, why: str) -> BackendStatus:
    mod, err = _module(module)
    if mod is None:
        return BackendStatus(label, False, f"{err} ({why})")
    return BackendStatus(label, True, f"{module} {getattr(mod, '__version__', '')}".strip())


def _inductor() -> BackendStatus:
    """The torch-inductor runtime compiles C++ for this CPU at start: it needs a compiler."""
    compiler = os.environ.get("CXX", "g++")
    path = shutil.which(compiler)
    if path is None:
        return BackendStatus("renderer torch-inductor", False, f"no C++ compiler {compiler!r} (apt-get install g++)")
    return BackendStatus("renderer torch-inductor", True, f"C++ compiler {path}")


def _sprites(pack: Path | None) -> BackendStatus:
    from engine.render.sprites.renderer import probe_sprites

    ok, detail = probe_sprites(pack or DEMO_SPRITES)
    return BackendStatus("appearance sprites", ok, detail)


def probe_backends(sprites: Path | None = None) -> list[BackendStatus]:
    """Everything `stagecast check` lists; `sprites` is the configured sprite pack (default: the demo pack)."""
    out = _torch() + _espeak() + _av()
    out.append(_sprites(sprites))
    out.append(_optional("pyopenjtalk", "Japanese kana (pyopenjtalk)", "needed for Japanese speech"))
    out.append(_optional("pypinyin", "Chinese pinyin (pypinyin)", "needed for Chinese speech"))
    out.append(_inductor())
    out.append(_optional("onnxruntime", "renderer onnxruntime", "pip install onnxruntime"))
    out.append(_optional("tensorrt", "renderer tensorrt", "TensorRT is not installed"))
    try:
        from engine.render.live2d.renderer import probe_live2d

        out += [BackendStatus(f"live2d: {n}", ok, d) for n, ok, d in probe_live2d(None)]
    except Exception as exc:
        out.append(BackendStatus("live2d", False, str(exc).splitlines()[0]))
    out += _listening()
    ffprobe = shutil.which("ffprobe")
    out.append(BackendStatus("ffprobe (tests)", ffprobe is not None, ffprobe or "apt-get install ffmpeg"))
    return out


def _listening() -> list[BackendStatus]:
    """A co-host's ears: the VAD model and Whisper base, both from PyPI wheels (no download)."""
    from engine.listen.errors import ListenError
    from engine.listen.model_files import packaged_base_dir
    from engine.listen.vad import default_model_path

    out = []
    for name, find in (("listening: Silero VAD", default_model_path), ("listening: Whisper base", packaged_base_dir)):
        try:
            out.append(BackendStatus(name, True, str(find())))
        except ListenError as exc:
            out.append(BackendStatus(name, False, str(exc).splitlines()[0]))
    out.append(_optional("sounddevice", "listening: device inputs", "pip install 'stagecast[mic]'"))
    return out
