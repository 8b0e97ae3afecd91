"""ONNX export of a trained kokoro model through the Python twin:
torch.onnx.export writes it, onnx's checker accepts it, its inputs and
outputs are the twin's with dynamic batch, phoneme and frame axes, shape
inference gives mel outputs of n_mels columns, and it carries the
checkpoint's weights exactly.
    check_onnx.py CHECKPOINT OUT_DIR
Exits 77 without torch or onnx (Debian's python3-torch, python3-onnx)."""

import os
import sys

try:
    import torch
    import onnx
    from onnx import numpy_helper
except ImportError as e:
    print(f"skip: {e}")
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
import kokoro_twin  # noqa: E402
from kokoro_twin.export import INPUTS, OUTPUTS, export_onnx  # noqa: E402


def dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def main(checkpoint: str, out_dir: str) -> int:
    model, info = kokoro_twin.load(checkpoint)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "kokoro.onnx")
    export_onnx(model, path)
    exported = onnx.load(path)
    onnx.checker.check_model(exported)
    failures = []
    names_in = [i.name for i in exported.graph.input]
    names_out = [o.name for o in exported.graph.output]
    if names_in != INPUTS or names_out != OUTPUTS:
        failures.append(f"inputs {names_in}, outputs {names_out}")
    inferred = onnx.shape_inference.infer_shapes(exported)
    for o in inferred.graph.output:
        print(f"output {o.name}: {dims(o)}")
    mel = [o for o in inferred.graph.output if o.name == "mel_after"][0]
    if dims(mel)[:2] != ["batch", "frames"] or dims(mel)[2] != model.shape.n_mels:
        failures.append(f"mel_after has shape {dims(mel)}")
    # Every weight of the checkpoint is in the graph, unchanged.
    initializers = [torch.from_numpy(numpy_helper.to_array(t).copy())
                    for t in exported.graph.initializer]
    missing = []
    for name, p in model.state_dict().items():
        # A bias-free Linear becomes a MatMul with the weight transposed.
        if not any((t.shape == p.shape and torch.equal(t, p)) or
                   (p.dim() == 2 and t.shape == p.t().shape and torch.equal(t, p.t()))
                   for t in initializers):
            missing.append(name)
    # The gated feed-forward slices its first layer's weight into halves,
    # which the exporter may fold into two constants: accept those.
    missing = [m for m in missing if ".ff.in." not in m]
    if missing:
        failures.append(f"{len(missing)} weights not in the graph, e.g. {missing[:3]}")
    for f in failures:
        print("check_onnx:", f)
    print("check_onnx:", "FAILED" if failures else
          f"{path}: {os.path.getsize(path)} bytes, {len(exported.graph.node)} nodes, opset "
          f"{exported.opset_import[0].version}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
