"""The exported render graph fits TensorRT 10's ONNX parser, checked here without a GPU or TensorRT.

Every node's type, the dtype of its data, and the restrictions on its inputs are checked against
TensorRT 10's documented operator support (onnx-tensorrt `docs/operators.md`, 10.x branch: the
table is copied into `TRT10` below, only the rows of operators a drawing program may plausibly
emit). Three things a review found are held here:

* uint8 only at the graph's edge: "UINT8 is only supported as network input or output tensor types",
  so the frame is drawn in float and the last node casts it to uint8;
* the scatter / gather indices are int64 from the whole-number box offsets on (an fp16 engine would
  round or overflow float index arithmetic: 700 rows x 1280 columns is past float16's 65504);
* `axes` of Slice / Squeeze / Unsqueeze are constants (the parser rejects computed axes).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxscript")),
                       reason="exporting needs onnx and onnxscript"),
]

_ALL = frozenset({"FLOAT", "FLOAT16", "BFLOAT16", "INT32", "INT64", "BOOL"})
_FLOATS = frozenset({"FLOAT", "FLOAT16", "BFLOAT16"})
_NUMBERS = _FLOATS | {"INT32", "INT64"}
# operator -> the data types TensorRT 10 supports (onnx-tensorrt docs/operators.md, "Supported Types")
TRT10: dict[str, frozenset[str]] = {
    **dict.fromkeys(("Abs", "Add", "Div", "Equal", "Greater", "Less", "Max", "Min", "Mod", "Mul", "Neg", "Sign",
                     "Sub", "Range", "ReduceMax", "ReduceMin", "ReduceSum", "Pad"), _NUMBERS),
    **dict.fromkeys(("Ceil", "Clip", "Cos", "Exp", "Floor", "Log", "MatMul", "Pow", "Reciprocal", "Round",
                     "Sigmoid", "Sin", "Sqrt", "Tanh", "CumSum"), _FLOATS),
    **dict.fromkeys(("Concat", "Constant", "ConstantOfShape", "Expand", "Gather", "GatherElements", "GatherND",
                     "Identity", "Reshape", "Shape", "Slice", "Split", "Squeeze", "Tile", "Transpose",
                     "Unsqueeze", "Where"), _ALL),
    **dict.fromkeys(("ScatterElements", "ScatterND"), _NUMBERS),
    **dict.fromkeys(("And", "Not", "Or"), frozenset({"BOOL"})),
    "Cast": _ALL | {"UINT8"},
}
CONSTANT_INPUT = {"Slice": 3, "Squeeze": 1, "Unsqueeze": 1, "Pad": 3, "ReduceMax": 1, "ReduceMin": 1,
                  "ReduceSum": 1, "CumSum": 1}  # "`axes` must be an initializer" (or a constant tensor)
# ops that carry whole numbers through unchanged: the walk from an index back to where it became whole
_KEEPS_WHOLE = {"Clip", "Max", "Min", "Reshape", "Concat", "Unsqueeze", "Squeeze", "Slice", "Gather", "Expand",
                "Transpose", "Identity", "Neg"}


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory):
    import onnx
    from onnx import shape_inference

    from engine.render.procedural.onnx_export import export_onnx

    path = export_onnx(192, 108, Path(tmp_path_factory.mktemp("onnx")) / "r.onnx")
    return shape_inference.infer_shapes(onnx.load(str(path)), strict_mode=True)


def _types(model) -> dict[str, str]:
    from onnx import TensorProto

    out = {t.name: TensorProto.DataType.Name(t.data_type) for t in model.graph.initializer}
    for vi in (*model.graph.value_info, *model.graph.input, *model.graph.output):
        out[vi.name] = TensorProto.DataType.Name(vi.type.tensor_type.elem_type)
    return out


def test_every_node_is_a_tensorrt_10_operator_on_a_type_it_supports(graph) -> None:
    assert all(op.domain in ("", "ai.onnx") and 9 <= op.version <= 20 for op in graph.opset_import)
    assert not graph.functions, "local functions: TensorRT sees only the main graph's nodes"
    types = _types(graph)
    problems = []
    for node in graph.graph.node:
        supported = TRT10.get(node.op_type)
        if supported is None:
            problems.append(f"{node.op_type} is not in TensorRT 10's operator table (or not yet checked here)")
            continue
        data = node.input[1:2] if node.op_type == "Where" else node.input[:1]  # Where's first input is the mask
        tensors = [*data, *node.output] if node.op_type == "Cast" else data
        for name in tensors:
            if name and types.get(name) not in supported:
                problems.append(f"{node.op_type} {node.name}: {name} is {types.get(name)}")
        for attr in node.attribute:
            if node.op_type == "ScatterND" and attr.name == "reduction" and attr.s not in (b"", b"none"):
                problems.append(f"ScatterND {node.name}: reduction {attr.s!r} is not supported")
    assert not problems, "\n".join(problems)


def test_uint8_only_in_the_last_cast_to_the_output(graph) -> None:
    types = _types(graph)
    (out,) = graph.graph.output
    (inp,) = graph.graph.input
    assert types[inp.name] == "FLOAT" and types[out.name] == "UINT8"
    assert inp.type.tensor_type.shape.dim[0].dim_param, "the batch must stay dynamic"
    uint8 = [(n.op_type, t) for n in graph.graph.node for t in (*n.input, *n.output) if types.get(t) == "UINT8"]
    assert uint8 == [("Cast", out.name)], f"uint8 inside the graph: {uint8}"
    assert graph.graph.node[-1].op_type == "Cast" and graph.graph.node[-1].output[0] == out.name
    assert not [t.name for t in graph.graph.initializer if t.data_type == 2], "uint8 weights"  # 2: UINT8


def test_axes_are_constants(graph) -> None:
    constants = {t.name for t in graph.graph.initializer}
    constants |= {o for n in graph.graph.node if n.op_type == "Constant" for o in n.output}
    static = {vi.name for vi in graph.graph.value_info
              if all(d.HasField("dim_value") for d in vi.type.tensor_type.shape.dim)}
    for node in graph.graph.node:
        k = CONSTANT_INPUT.get(node.op_type)
        if k is None:
            continue
        if len(node.input) > k and node.input[k]:
            assert node.input[k] in constants, f"{node.op_type} {node.name}: axes {node.input[k]} are computed"
        else:  # no axes: TensorRT infers them from the input's shape, which must then be static
            assert node.op_type == "Squeeze" and node.input[0] in static, f"{node.op_type} {node.name}: no axes"


def test_indices_are_int64_from_the_whole_number_offsets_on(graph) -> None:
    """Every float -> int64 cast takes a whole number (a Floor, clipped or reshaped): index arithmetic is int64."""
    from onnx import TensorProto

    producer = {o: n for n in graph.graph.node for o in n.output}
    constants = {t.name for t in graph.graph.initializer}

    def whole(name: str) -> bool:
        node = producer.get(name)
        if node is None:
            return name in constants
        if node.op_type in ("Floor", "Constant"):
            return True
        if node.op_type in ("Clip", "Max", "Min"):
            return whole(node.input[0]) and all(whole(i) for i in node.input[1:] if i)
        return node.op_type in _KEEPS_WHOLE and whole(node.input[0]) and (
            node.op_type != "Concat" or all(whole(i) for i in node.input))

    casts = [n for n in graph.graph.node if n.op_type == "Cast" and n.attribute[0].i == TensorProto.INT64]
    assert casts, "the graph moves pixels by int64 indices"
    bad = [n.name for n in casts if not whole(n.input[0])]
    assert not bad, f"float arithmetic cast to an index: {bad}"
