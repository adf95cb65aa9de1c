"""Write models/smoke.onnx, a tiny fixed model that proves ONNX Runtime loads and computes.

    output = softmax(input @ W + b)      input: float32 [1, 4]  ->  output: float32 [1, 2]

    W = [[ 0.5,   -0.25 ],               b = [0.1, -0.2]
         [ 0.25,   0.5  ],
         [-0.5,    0.25 ],
         [ 0.125, -0.125]]

For input [1, 2, 3, 4] the logits are [0.1, 0.8], so output = [0.3318..., 0.6681...].
The expected numbers are also written to models/smoke.expected.json
({"input": [...], "output": [...]}) for the Rust test. Opset 17, IR version 9.
Deterministic: no randomness, no timestamps.

Run from the repository root:

    .venv/bin/python models/make_smoke.py
"""

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 9  # ONNX Runtime 1.31 accepts IR versions up to 11+; 9 is widely supported.

W = np.array([[0.5, -0.25], [0.25, 0.5], [-0.5, 0.25], [0.125, -0.125]], dtype=np.float32)
B = np.array([0.1, -0.2], dtype=np.float32)
PROBE_INPUT = np.array([[1.0, 2.0, 3.0, 4.0]], dtype=np.float32)

HERE = Path(__file__).resolve().parent


def build_model() -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes=[
            helper.make_node("MatMul", ["input", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["output"], axis=-1),
        ],
        name="trunx_smoke",
        inputs=[helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        outputs=[helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 2])],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "b")],
        doc_string="output = softmax(input @ W + b); see models/make_smoke.py",
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="trunx/models/make_smoke.py",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def reference(x: np.ndarray) -> np.ndarray:
    """Numpy float32 forward pass identical to the graph."""
    z = x @ W + B
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def main() -> None:
    model = build_model()
    onnx_path = HERE / "smoke.onnx"
    onnx.save(model, onnx_path)

    expected = reference(PROBE_INPUT)
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime not installed; skipped runtime check")
    else:
        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        got = sess.run(["output"], {"input": PROBE_INPUT})[0]
        assert np.allclose(got, expected, rtol=0, atol=1e-6), (got, expected)
        print(f"onnxruntime {ort.__version__} agrees with numpy (max abs diff "
              f"{float(np.abs(got - expected).max()):.2e})")

    out = {"input": PROBE_INPUT[0].tolist(), "output": expected[0].tolist()}
    (HERE / "smoke.expected.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size} bytes) and smoke.expected.json")
    print(f"input  {out['input']}")
    print(f"output {out['output']}")


if __name__ == "__main__":
    main()
