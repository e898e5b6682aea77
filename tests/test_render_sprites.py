"""The `sprites` appearance: the demo pack, every state channel where it should act, purity, pack errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from engine.lifecycle import Lifecycle
from engine.render.sprites.renderer import SpritePackError, SpritesRenderer, probe_sprites
from engine.render.sprites.rig import load_rig
from engine.state import EMOTIONS, VISEMES, P, make_state
from tests.render_support import contact_sheet, viseme

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent
PACK = REPO / "configs" / "characters" / "sprite-demo"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
W = H = 256  # the pack's 512 canvas at half size

# where the demo's parts sit at rest, in canvas pixels (x0, y0, x1, y1): see scripts/make_sprite_demo.py
MOUTH = (224, 300, 288, 346)
EYE_SCREEN_LEFT = (185, 238, 241, 306)  # the character's right eye (eye_open_r)
EYE_SCREEN_RIGHT = (271, 238, 327, 306)
BROWS = (184, 214, 328, 254)
EARS = (120, 60, 392, 130)
BODY = (96, 420, 416, 512)
FACE_POINT = (256, 290)


@pytest.fixture(scope="module")
def renderer() -> SpritesRenderer:
    return SpritesRenderer(W, H, PACK)


def frame(r: SpritesRenderer, state: torch.Tensor) -> np.ndarray:
    return r.render(state.unsqueeze(0))[0].numpy().astype(np.int16)


def px(r: SpritesRenderer, box: tuple[float, float, float, float], margin: float = 0) -> tuple[slice, slice]:
    """A canvas-pixel box as frame slices (rows, columns)."""
    x0, y0, x1, y1 = box
    ox, oy = r.offset
    z = r.zoom
    return (slice(max(0, int(oy + z * (y0 - margin))), int(oy + z * (y1 + margin)) + 1),
            slice(max(0, int(ox + z * (x0 - margin))), int(ox + z * (x1 + margin)) + 1))


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b).max(axis=-1) > 0


def only_inside(mask: np.ndarray, region: tuple[slice, slice]) -> bool:
    outside = mask.copy()
    outside[region] = False
    return not outside.any()


def test_demo_pack_loads_and_draws(renderer: SpritesRenderer) -> None:
    rig = load_rig(PACK)
    names = [p.name for p in rig.parts]
    assert {"body", "head", "eye_l", "eye_r", "mouth", "brows", "blush", "hair_back", "hair_front"} <= set(names)
    assert names.index("hair_back") < names.index("body") < names.index("head") < names.index("hair_front")
    frames = renderer.render(torch.stack([make_state(), make_state(joy=1.0)]))
    assert frames.shape == (2, H, W, 3) and frames.dtype == torch.uint8 and frames.device.type == "cpu"
    bg = torch.tensor(rig.background, dtype=torch.uint8)
    assert torch.equal(frames[0, 0, 0], bg)
    assert (frames[0] != bg).any(-1).float().mean() > 0.25  # a character fills a good part of the frame
    with pytest.raises(ValueError, match="states must be"):
        renderer.render(torch.zeros(2, P + 1))
    assert sum(f.stat().st_size for f in PACK.glob("*.png")) < 300_000


def test_wide_output_keeps_aspect_and_centres(renderer: SpritesRenderer) -> None:
    wide = SpritesRenderer(160, 90, PACK)
    f = wide.render(make_state().unsqueeze(0))[0]
    assert wide.zoom == pytest.approx(90 / 512) and wide.offset == pytest.approx(((160 - 90) / 2, 0.0))
    bg = torch.tensor(wide.rig.background, dtype=torch.uint8)
    assert (f[:, :30] == bg).all() and (f[:, -30:] == bg).all()  # letterboxed sides
    cols = (f != bg).any(-1).any(0).nonzero().flatten()
    assert abs((cols.min() + cols.max()).item() / 2 - 80) <= 2


def test_each_viseme_changes_the_mouth_and_only_it(renderer: SpritesRenderer) -> None:
    closed = frame(renderer, make_state())
    mouth = px(renderer, MOUTH, margin=4)
    shapes = {}
    for v in VISEMES[1:]:
        f = frame(renderer, viseme(v))
        diff = changed(f, closed)
        assert diff[mouth].sum() >= 8, v
        assert only_inside(diff, mouth), v
        shapes[v] = f[mouth]
    for i, a in enumerate(VISEMES[1:]):
        for b in VISEMES[i + 2 :]:
            assert not np.array_equal(shapes[a], shapes[b]), (a, b)
    # weights: the largest wins; a faint viseme stays closed
    mixed = make_state(mouth_closed=0.3, mouth_a=0.5, mouth_o=0.2)
    assert np.array_equal(frame(renderer, mixed), frame(renderer, viseme("a")))
    assert np.array_equal(frame(renderer, make_state(mouth_closed=0.0, mouth_e=0.1)), closed)


def test_eyes_open_half_closed_each_side(renderer: SpritesRenderer) -> None:
    open_ = frame(renderer, make_state())
    eyes = [px(renderer, EYE_SCREEN_LEFT, margin=3), px(renderer, EYE_SCREEN_RIGHT, margin=3)]
    closed = frame(renderer, make_state(eye_open_l=0.0, eye_open_r=0.0))
    half = frame(renderer, make_state(eye_open_l=0.5, eye_open_r=0.5))
    for f in (closed, half):
        diff = changed(f, open_)
        assert all(diff[e].sum() >= 20 for e in eyes)
        outside = diff.copy()
        for e in eyes:
            outside[e] = False
        assert not outside.any()
    assert changed(closed, half).sum() >= 20
    right_only = changed(frame(renderer, make_state(eye_open_l=0.0)), open_)  # eye_open_l: screen right
    assert right_only[eyes[1]].any() and only_inside(right_only, eyes[1])


def test_each_emotion_has_its_own_brows(renderer: SpritesRenderer) -> None:
    brows = px(renderer, BROWS, margin=2)
    crops = {"neutral": frame(renderer, make_state())[brows]}
    for e in EMOTIONS:
        crops[e] = frame(renderer, make_state(**{e: 1.0}))[brows]
    names = list(crops)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert changed(crops[a], crops[b]).sum() >= 10, (a, b)
    assert np.array_equal(frame(renderer, make_state(joy=0.1))[brows], crops["neutral"])  # below the threshold


def test_emotions_swap_eyes_and_mouth_where_the_pack_has_variants(renderer: SpritesRenderer) -> None:
    rest = frame(renderer, make_state())
    eyes = [px(renderer, EYE_SCREEN_LEFT, margin=3), px(renderer, EYE_SCREEN_RIGHT, margin=3)]
    mouth = px(renderer, MOUTH, margin=4)
    happy = changed(frame(renderer, make_state(joy=1.0)), rest)
    assert all(happy[e].sum() >= 20 for e in eyes) and happy[mouth].sum() >= 8  # ^ ^ eyes and a smile
    cores = [px(renderer, (196, 252, 230, 290)), px(renderer, (282, 252, 316, 290))]  # clear of brows and blush
    wink = changed(frame(renderer, make_state(fun=1.0)), rest)
    assert wink[cores[1]].sum() >= 20 and not wink[cores[0]].any()  # fun winks the screen-right eye only
    sad = changed(frame(renderer, make_state(sorrow=1.0)), rest)
    assert sad[mouth].sum() >= 8 and not sad[cores[0]].any() and not sad[cores[1]].any()  # a frown, same eyes
    # an open viseme has no emotion variant in the demo: speaking while happy shows the viseme
    lips = px(renderer, (226, 308, 286, 346))
    assert np.array_equal(frame(renderer, viseme("a", joy=1.0))[lips], frame(renderer, viseme("a", blush=0.35))[lips])


def test_extras_follow_their_fields(renderer: SpritesRenderer) -> None:
    base = frame(renderer, make_state())
    cheeks = changed(frame(renderer, make_state(blush=1.0)), base)
    assert cheeks.sum() >= 20
    faint = changed(frame(renderer, make_state(blush=0.3)), base)
    full = np.abs(frame(renderer, make_state(blush=1.0)) - base).sum()
    assert 0 < np.abs(frame(renderer, make_state(blush=0.3)) - base).sum() < full and faint.any()


def centroid_x(f: np.ndarray, bg: np.ndarray, region: tuple[slice, slice]) -> float:
    mask = changed(f, bg)[region]
    return float(np.nonzero(mask)[1].mean())


def test_head_roll_and_yaw_move_the_head_not_the_body(renderer: SpritesRenderer) -> None:
    rest = frame(renderer, make_state())
    bg = np.broadcast_to(np.array(renderer.rig.background, dtype=np.int16), rest.shape)
    body, ears = px(renderer, BODY), px(renderer, EARS)
    for field in ("head_roll", "head_yaw"):
        right = frame(renderer, make_state(**{field: 1.0}))
        left = frame(renderer, make_state(**{field: -1.0}))
        assert changed(right, rest).sum() > 200, field
        assert np.array_equal(right[body], rest[body]) and np.array_equal(left[body], rest[body]), field
        # clockwise roll tips the ears right; yaw +1 turns the head to screen right
        assert centroid_x(right, bg, ears) > centroid_x(rest, bg, ears) + 2 > centroid_x(left, bg, ears) + 4, field
    tilted = frame(renderer, make_state(head_roll=0.5))
    face = px(renderer, (FACE_POINT[0] - 40, FACE_POINT[1] - 40, FACE_POINT[0] + 40, FACE_POINT[1] + 40))
    assert changed(tilted, rest)[face].any()


def top_row(f: np.ndarray, bg: np.ndarray, column: int) -> int:
    return int(np.nonzero(changed(f, bg)[:, column])[0].min())


def test_breath_raises_the_chest_and_the_head(renderer: SpritesRenderer) -> None:
    rest = frame(renderer, make_state())
    deep = frame(renderer, make_state(breath=1.0))
    bg = np.broadcast_to(np.array(renderer.rig.background, dtype=np.int16), rest.shape)
    shoulder = int(renderer.offset[0] + renderer.zoom * 130)
    ear = int(renderer.offset[0] + renderer.zoom * 162)
    assert changed(deep, rest)[px(renderer, BODY)].any()
    assert top_row(deep, bg, shoulder) < top_row(rest, bg, shoulder)
    assert top_row(deep, bg, ear) <= top_row(rest, bg, ear) - 2


def test_pure_and_identical_in_any_batch(renderer: SpritesRenderer) -> None:
    states = torch.stack([
        make_state(head_yaw=0.3 * i - 1.0, head_roll=0.25 * i - 0.9, head_pitch=0.1 * i - 0.3, breath=i / 7,
                   mouth_closed=0.0, **{f"mouth_{VISEMES[1 + i % 5]}": 0.8}, **{EMOTIONS[i % 5]: 0.7},
                   eye_open_l=i / 7, blush=0.1 * i)
        for i in range(8)
    ])
    batch = renderer.render(states)
    for i in range(8):
        assert torch.equal(renderer.render(states[i : i + 1])[0], batch[i]), i
    assert torch.equal(renderer.render(states[3:4]), renderer.render(states[3:4]))
    assert torch.equal(SpritesRenderer(W, H, PACK).render(states[5:7]), batch[5:7])  # a fresh renderer too
    assert len({bytes(f.numpy()) for f in batch}) == 8


def test_rgba_is_transparent_around_and_opaque_on_the_face(renderer: SpritesRenderer) -> None:
    states = torch.stack([make_state(), make_state(head_roll=0.3, joy=1.0)])
    rgba = renderer.render_rgba(states)
    rgb = renderer.render(states)
    assert rgba.shape == (2, H, W, 4) and rgba.dtype == torch.uint8
    fy, fx = int(renderer.offset[1] + renderer.zoom * FACE_POINT[1]), int(renderer.offset[0] + renderer.zoom * 256)
    for i in range(2):
        assert rgba[i, 0, 0, 3] == 0 and rgba[i, -1, 0, 3] == 0 and tuple(rgba[i, 0, 0, :3]) == (0, 0, 0)
        assert rgba[i, fy, fx, 3] == 255
        opaque = rgba[i, ..., 3] == 255
        diff = (rgba[i][opaque][:, :3].int() - rgb[i][opaque].int()).abs()
        assert diff.max() <= 1 and diff.float().mean() < 0.01  # straight alpha: the same colours where opaque
    edge = (rgba[0, ..., 3] > 0) & (rgba[0, ..., 3] < 255)
    assert edge.any()  # anti-aliased outline


def test_full_canvas_layers_are_cropped_to_the_same_picture(tmp_path: Path) -> None:
    """PNGTuber packs often export every layer at canvas size; that must draw like a tight crop."""
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack)
    rig = yaml.safe_load((pack / "rig.yaml").read_text())
    mouth = rig["parts"]["mouth"]
    head = rig["parts"]["head"]
    # the mouth's pivot in canvas pixels: neck (head pivot in the canvas) + position
    neck = (256.0, 352.0)
    at = (neck[0] + mouth["position"][0], neck[1] + mouth["position"][1])
    corner = (round(at[0] - mouth["pivot"][0]), round(at[1] - mouth["pivot"][1]))
    for name in mouth["images"].values():
        part = Image.open(pack / name)
        big = Image.new("RGBA", (512, 512))
        big.paste(part, corner)
        big.save(pack / name)
    mouth["pivot"] = list(at)
    (pack / "rig.yaml").write_text(yaml.safe_dump(rig, sort_keys=False))
    assert head["pivot"]
    ref, big = SpritesRenderer(512, 512, PACK), SpritesRenderer(512, 512, pack)
    states = torch.stack([viseme("a"), viseme("o", head_roll=0.4, head_yaw=0.5)])
    assert torch.equal(ref.render(states), big.render(states))


def test_contact_sheet(renderer: SpritesRenderer) -> None:
    """Rows: neutral + each emotion; columns: each viseme. Written for people to look at."""
    sheet = contact_sheet(renderer.render)
    ARTIFACTS.mkdir(exist_ok=True)
    Image.fromarray(sheet.numpy()).save(ARTIFACTS / "contact_sheet_sprites.png")
    assert sheet.shape == (H * (1 + len(EMOTIONS)), W * len(VISEMES), 3)
    cells = sheet.view(1 + len(EMOTIONS), H, len(VISEMES), W, 3).permute(0, 2, 1, 3, 4).reshape(-1, H * W * 3)
    assert len({bytes(c.numpy()) for c in cells}) == cells.shape[0]  # every emotion x viseme looks different


# -- broken packs ---------------------------------------------------------------------------------


def broken(tmp_path: Path, edit) -> Path:
    pack = tmp_path / "broken"
    shutil.copytree(PACK, pack)
    rig = yaml.safe_load((pack / "rig.yaml").read_text())
    result = edit(rig, pack)
    if result is not False:
        (pack / "rig.yaml").write_text(yaml.safe_dump(rig, sort_keys=False))
    return pack


def _set(path: str, value):
    def edit(rig, pack):
        *keys, last = path.split(".")
        node = rig
        for k in keys:
            node = node[k]
        node[last] = value
    return edit


def _drop(path: str):
    def edit(rig, pack):
        *keys, last = path.split(".")
        node = rig
        for k in keys:
            node = node[k]
        del node[last]
    return edit


def _missing_rig(rig, pack):
    (pack / "rig.yaml").unlink()
    return False


def _missing_png(rig, pack):
    (pack / "mouth_o.png").unlink()


def _eye_size_mismatch(rig, pack):
    img = Image.open(pack / "eye_half.png")
    img.crop((0, 0, img.width, img.height - 3)).save(pack / "eye_half.png")


def _bad_yaml(rig, pack):
    (pack / "rig.yaml").write_text("canvas: [512, 512\nparts: {}\n")
    return False


def _cycle(rig, pack):
    rig["parts"]["body"]["parent"] = "hair_front"


def _not_a_png(rig, pack):
    (pack / "blush.png").write_text("not an image")


BROKEN = [
    ("missing rig.yaml", _missing_rig, ["rig.yaml", "not found"]),
    ("not YAML", _bad_yaml, ["rig.yaml", "not valid YAML"]),
    ("missing image", _missing_png, ["parts.mouth.images.o", "mouth_o.png", "not found"]),
    ("unreadable image", _not_a_png, ["parts.blush.image", "blush.png"]),
    ("unknown parent", _set("parts.head.parent", "torso"), ["parts.head.parent", "torso"]),
    ("parent cycle", _cycle, ["parent cycle", "body", "head", "hair_front"]),
    ("pivot outside", _set("parts.head.pivot", [5000, 10]), ["parts.head.pivot", "outside", "head.png"]),
    ("size mismatch", _eye_size_mismatch, ["parts.eye_r.images", "eye_half.png", "same size"]),
    ("missing viseme", _drop("parts.mouth.images.o"), ["parts.mouth.images", "missing", "o"]),
    ("missing neutral brows", _drop("parts.brows.images.neutral"), ["parts.brows.images", "neutral"]),
    ("unknown image state", _set("parts.eye_l.images.wink", "eye_open.png"), ["parts.eye_l.images.wink"]),
    ("images without select", _drop("parts.mouth.select"), ["parts.mouth.select"]),
    ("pivot of wrong type", _set("parts.head.pivot", "middle"), ["parts.head.pivot", "middle"]),
    ("canvas of wrong type", _set("canvas", "big"), ["canvas", "big"]),
    ("parts not a mapping", _set("parts", ["body", "head"]), ["parts"]),
    ("misspelt key", _set("parts.head.pivto", [1, 2]), ["parts.head.pivto", "unknown key"]),
    ("unknown state field", _set("parts.head.move", {"head_yaww": [1, 0]}), ["parts.head.move", "head_yaww"]),
    ("opacity field", _set("parts.blush.opacity", "blushh"), ["parts.blush.opacity", "blushh"]),
    ("image outside the pack", _set("parts.head.image", "../head.png"), ["parts.head.image", "inside the pack"]),
]


@pytest.mark.parametrize(("case", "edit", "needles"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_packs_name_file_and_part(tmp_path: Path, case: str, edit, needles: list[str]) -> None:
    pack = broken(tmp_path, edit)
    with pytest.raises(SpritePackError) as err:
        SpritesRenderer(64, 64, pack)
    message = str(err.value)
    assert str(pack) in message, message
    for needle in needles:
        assert needle in message, (needle, message)
    ok, detail = probe_sprites(pack)
    assert not ok and needles[0] in detail
    assert isinstance(err.value, ValueError)


def test_missing_pack_folder(tmp_path: Path) -> None:
    with pytest.raises(SpritePackError, match="not found"):
        load_rig(tmp_path / "nowhere")
    assert probe_sprites(PACK)[0]


# -- wiring: config, assembly, `stagecast check`, an offline render ----------------------------------


def test_config_selects_the_demo_pack_by_default_and_resolves_relative_packs(tmp_path: Path) -> None:
    from streamer.assembly import build_renderer
    from streamer.assets import DEMO_SPRITES
    from streamer.config import ConfigError, load_config, parse_config

    config = parse_config({"video": {"width": 128, "height": 96}, "character": {"appearance": "sprites"}})
    assert config.character.sprites is None and config.character.sprite_pack() == DEMO_SPRITES == PACK
    r = build_renderer(config)
    assert isinstance(r, SpritesRenderer) and (r.width, r.height) == (128, 96)
    assert r.render(make_state().unsqueeze(0)).shape == (1, 96, 128, 3)
    shutil.copytree(PACK, tmp_path / "packs" / "mine")
    (tmp_path / "show.yaml").write_text("character:\n  appearance: sprites\n  sprites: packs/mine\n")
    assert load_config(tmp_path / "show.yaml").character.sprite_pack() == (tmp_path / "packs" / "mine").resolve()
    (tmp_path / "bad.yaml").write_text("character:\n  appearance: sprites\n  sprites: packs/nothing\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "bad.yaml")
    assert "bad.yaml" in str(err.value) and "character.sprites" in str(err.value) and "nothing" in str(err.value)


def test_check_reports_whether_the_pack_loads(tmp_path: Path, monkeypatch, capsys) -> None:
    from streamer import cli
    from streamer.cli import backends

    monkeypatch.setattr(backends, "_espeak", lambda: [])  # not what this test is about, and the slow part
    pack = broken(tmp_path, _set("parts.head.parent", "torso"))
    (tmp_path / "show.yaml").write_text(f"character:\n  appearance: sprites\n  sprites: {pack}\n")
    assert cli.main(["check", "-c", str(tmp_path / "show.yaml")]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "appearance sprites" in x)
    assert "[no ]" in line and "parts.head.parent" in line and "torso" in line
    (tmp_path / "good.yaml").write_text(f"character:\n  appearance: sprites\n  sprites: {PACK}\n")
    assert cli.main(["check", "-c", str(tmp_path / "good.yaml")]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "appearance sprites" in x)
    assert "[yes]" in line and "parts" in line


class _Recorder(Lifecycle):
    """Wraps a Renderer and keeps a digest of the mouth area of every frame."""

    def __init__(self, inner: SpritesRenderer) -> None:
        self.inner, self.width, self.height = inner, inner.width, inner.height
        self.mouths: list[bytes] = []

    def render(self, states: torch.Tensor) -> torch.Tensor:
        frames = self.inner.render(states)
        rows, cols = px(self.inner, MOUTH)
        self.mouths += [bytes(f[rows, cols].numpy()) for f in frames]
        return frames


@pytest.mark.integration
def test_offline_render_with_the_sprites_appearance() -> None:
    from streamer.assembly import build_engine
    from streamer.config import parse_config
    from streamer.render_script import ScriptLine, render_script

    config = parse_config({"video": {"width": 192, "height": 192}, "character": {"appearance": "sprites"}})
    parts = build_engine(config)
    assert isinstance(parts.renderer, SpritesRenderer)
    parts.renderer = rec = _Recorder(parts.renderer)
    result = render_script(config, [ScriptLine(t=0.1, say="Hello there, chat!", lang="en")], None, tail_s=0.2,
                           parts=parts)
    assert len(rec.mouths) >= result.frames > 20
    assert len(set(rec.mouths)) >= 4  # the mouth takes several shapes while speaking


def test_renders_inside_and_outside_inference_mode() -> None:
    """The frame loop renders in inference mode, the soak and tests outside it: one renderer serves both."""
    r = SpritesRenderer(160, 160, PACK)
    state = viseme("a", head_roll=0.3).unsqueeze(0)
    with torch.inference_mode():
        inside = r.render(state)
    outside = r.render(state)  # reuses the scratch tensors made inside inference mode
    with torch.inference_mode():
        again = r.render(state)
    assert torch.equal(inside, outside) and torch.equal(outside, again)
