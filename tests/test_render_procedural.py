"""The procedural renderer: shapes, purity, and that every state channel visibly does something."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.render.procedural.look import LOOKS, CharacterLook
from engine.render.procedural.renderer import ProceduralRenderer
from engine.state import EMOTIONS, VISEMES, P, make_state
from tests.render_support import contact_sheet, viseme

pytestmark = pytest.mark.unit

W, H = 256, 256
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def write_png(path: Path, image: np.ndarray) -> None:
    """Minimal PNG writer (RGB or RGBA uint8), so tests need no imaging library."""
    h, w, c = image.shape
    raw = b"".join(b"\x00" + image[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", w, h, 8, {3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def renderer() -> ProceduralRenderer:
    return ProceduralRenderer(W, H)


def render1(r: ProceduralRenderer, state: torch.Tensor) -> torch.Tensor:
    return r.render(state.unsqueeze(0))[0]


def region(frame: torch.Tensor, box: tuple[float, float, float, float]) -> torch.Tensor:
    """Crop by fractions of the frame (x0, x1, y0, y1) so the tests do not depend on pixel layout."""
    x0, x1, y0, y1 = box
    return frame[int(y0 * H) : int(y1 * H), int(x0 * W) : int(x1 * W)].float()


FACE = (0.3, 0.7, 0.15, 0.62)
EYES = (0.3, 0.7, 0.3, 0.5)
MOUTH = (0.42, 0.58, 0.47, 0.6)


def mean_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().mean())


def test_shape_dtype_and_rgba(renderer: ProceduralRenderer) -> None:
    states = torch.stack([make_state(), make_state(joy=1.0)])
    frames = renderer.render(states)
    assert frames.shape == (2, H, W, 3) and frames.dtype == torch.uint8 and frames.device.type == "cpu"
    rgba = renderer.render_rgba(states)
    assert rgba.shape == (2, H, W, 4) and rgba.dtype == torch.uint8
    assert (
        rgba[0, 0, 0, 3] == 0 and rgba[0, int(0.4 * H), W // 2, 3] == 255
    )  # transparent corner, opaque face
    assert torch.equal(rgba[0, int(0.4 * H), W // 2, :3], frames[0, int(0.4 * H), W // 2])


def test_rejects_bad_state_shape(renderer: ProceduralRenderer) -> None:
    with pytest.raises(ValueError):
        renderer.render(torch.zeros(P))


def test_deterministic_without_hidden_state(renderer: ProceduralRenderer) -> None:
    s = make_state(joy=0.4, mouth_a=0.6, head_yaw=0.3, head_roll=-0.5, breath=0.7, gaze_x=0.4).unsqueeze(0)
    first = renderer.render(s).clone()
    renderer.render(torch.stack([make_state(anger=1.0, head_pitch=-1.0), make_state(surprise=1.0)]))
    assert torch.equal(first, renderer.render(s))
    assert torch.equal(first, ProceduralRenderer(W, H).render(s))


def test_batch_equals_single_renders(renderer: ProceduralRenderer) -> None:
    gen = torch.Generator().manual_seed(7)
    states = torch.rand(8, P, generator=gen) * 2.0 - 0.5  # includes out-of-range values (clamped)
    batch = renderer.render(states)
    for i in range(8):
        assert torch.equal(batch[i], render1(renderer, states[i]))


def test_emotions_change_face_and_differ_from_each_other(renderer: ProceduralRenderer) -> None:
    neutral = region(render1(renderer, make_state()), FACE)
    faces = {e: region(render1(renderer, make_state(**{e: 1.0})), FACE) for e in EMOTIONS}
    for e, face in faces.items():
        assert mean_diff(face, neutral) > 1.5, e
    for i, a in enumerate(EMOTIONS):
        for b in EMOTIONS[i + 1 :]:
            assert mean_diff(faces[a], faces[b]) > 1.0, (a, b)


def test_visemes_change_mouth(renderer: ProceduralRenderer) -> None:
    mouths = {v: region(render1(renderer, viseme(v)), MOUTH) for v in VISEMES}
    for i, a in enumerate(VISEMES):
        for b in VISEMES[i + 1 :]:
            assert mean_diff(mouths[a], mouths[b]) > 1.0, (a, b)
    assert mean_diff(mouths["closed"], mouths["a"]) > 12.0


def test_eye_open_changes_eyes(renderer: ProceduralRenderer) -> None:
    opened = region(render1(renderer, make_state()), EYES)
    closed = region(render1(renderer, make_state(eye_open_l=0.0, eye_open_r=0.0)), EYES)
    assert mean_diff(opened, closed) > 8.0


@pytest.mark.parametrize(
    "field", ["head_yaw", "head_pitch", "head_roll", "breath", "gaze_x", "brow_l", "blush"]
)
def test_pose_fields_move_pixels(renderer: ProceduralRenderer, field: str) -> None:
    rest = render1(renderer, make_state()).float()
    moved = render1(renderer, make_state(**{field: 1.0})).float()
    assert (rest - moved).abs().amax(-1).gt(30).sum() > 20, field


def test_breath_moves_shoulders_only_a_little(renderer: ProceduralRenderer) -> None:
    rest = render1(renderer, make_state()).float()
    up = render1(renderer, make_state(breath=1.0)).float()
    changed = (rest - up).abs().amax(-1).gt(30)
    rows = changed.any(1).nonzero().flatten()
    assert rows.numel() > 0 and rows.min() > int(0.6 * H)  # shoulders and neckline, not the face


def colour_share(rgb: torch.Tensor, colour: tuple[int, int, int], tolerance: int = 12) -> float:
    """The share of the frame's pixels within `tolerance` of `colour` (per channel)."""
    return float(((rgb.int() - torch.tensor(colour)).abs().amax(-1) <= tolerance).float().mean())


@pytest.mark.parametrize("name", sorted(LOOKS))
def test_looks_and_sizes_render(name: str) -> None:
    """Each look draws its character, in its own colours, centred and whole, landscape and portrait."""
    look = LOOKS[name]
    state = make_state(joy=1.0, head_roll=1.0).unsqueeze(0)
    for w, h in ((160, 90), (90, 160)):
        renderer = ProceduralRenderer(w, h, look)
        frame, rgba = renderer.render(state), renderer.render_rgba(state)
        assert frame.shape == (1, h, w, 3)
        alpha = rgba[0, ..., 3]
        assert int(alpha[0, 0]) == int(alpha[0, -1]) == 0 and int(alpha[int(0.4 * h), w // 2]) == 255  # centred
        assert 0.1 < float((alpha == 255).float().mean()) < 0.8, (name, w, h)  # a character, not a blank or a fill
        assert colour_share(rgba[0, ..., :3], look.hair) > 0.01, (name, w, h)  # its hair colour
        assert colour_share(rgba[0, ..., :3], look.skin) > 0.01, (name, w, h)  # and skin are on screen
        opaque = alpha == 255
        # the same character over the background (compositing may round by one level)
        assert (frame[0][opaque].int() - rgba[0, ..., :3][opaque].int()).abs().max() <= 1
    silhouettes = {n: ProceduralRenderer(160, 90, LOOKS[n]).render_rgba(state)[0, ..., 3] for n in LOOKS}
    others = [n for n in silhouettes if n != name]
    assert all(not torch.equal(silhouettes[name], silhouettes[n]) for n in others)  # a look of its own


def test_look_validation() -> None:
    assert CharacterLook.from_dict({"hair": "#102030"}).hair == (16, 32, 48)
    with pytest.raises(ValueError):
        CharacterLook(hair_style="mohawk")
    with pytest.raises(KeyError):
        CharacterLook.from_dict({"hat": "#000000"})


def test_module_exports_without_data_dependent_control_flow(renderer: ProceduralRenderer) -> None:
    states = torch.stack([make_state(joy=0.5), make_state(fun=1.0)])
    exported = torch.export.export(renderer.module, (states,))
    assert torch.equal(exported.module()(states), renderer.module(states))


def cell_state(row: int, column: int) -> torch.Tensor:
    """The state of a contact-sheet cell: row 0 neutral, then each emotion; column: each viseme."""
    emotion = (None, *EMOTIONS)[row]
    extra = {emotion: 1.0} if emotion else {}
    name = VISEMES[column]
    return viseme(name, **extra) if name != "closed" else make_state(**extra)


def test_contact_sheet(renderer: ProceduralRenderer) -> None:
    """Rows: neutral + each emotion; columns: each viseme. Written for people to look at."""
    sheet = contact_sheet(renderer.render)
    ARTIFACTS.mkdir(exist_ok=True)
    write_png(ARTIFACTS / "contact_sheet_procedural.png", sheet.numpy())
    assert sheet.shape == (H * (1 + len(EMOTIONS)), W * len(VISEMES), 3)
    # every cell is a different face: rows (emotions) differ, and columns (visemes) differ at the mouth
    cells = sheet.reshape(1 + len(EMOTIONS), H, len(VISEMES), W, 3).permute(0, 2, 1, 3, 4)
    for r, c in ((0, 0), (len(EMOTIONS), len(VISEMES) - 1)):  # laid out where the legend says
        assert torch.equal(cells[r, c], render1(renderer, cell_state(r, c))), (r, c)
    firsts = [region(cells[r, 0], FACE) for r in range(cells.shape[0])]
    assert all(mean_diff(a, b) > 1.0 for i, a in enumerate(firsts) for b in firsts[i + 1:])
    mouths = [region(cells[0, c], MOUTH) for c in range(cells.shape[1])]
    assert all(mean_diff(a, b) > 1.0 for i, a in enumerate(mouths) for b in mouths[i + 1:])
