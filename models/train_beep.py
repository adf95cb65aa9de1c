"""Train the voicemail-beep confirmation model and export it to ONNX.

Input CSV (--data, default models/beep_features.csv), header:

    label,split,f0,f1,...,f{K-1}

label is 1 for a voicemail beep and 0 for anything else (speech, music, chime,
vowel, ...); split is "train" or "test"; K is taken from the header.

Model: standardise (train mean/std) -> 5 nets, each Linear(K, 16) -> tanh -> Linear(16, 2) ->
softmax, fitted alike from seeds seed..seed+4 -> the mean of their probabilities. One net's
figures swing with its seed (generator 1 dev first-beep recall 0.89-0.95 and generator 2 dev
false beeps 3-8 over three seeds); the mean of five is steadier (--members 1 gives the single
net of the earlier version). Trained with full-batch Adam, L2 on the weight matrices and
class-balanced cross-entropy, in float64 numpy with fixed seeds (no other randomness, so a
rerun on the same CSV gives the same model).

Threshold (--threshold): the beep decision is P(beep) >= threshold, the value of
`AmdConfig::beep_model_threshold`, chosen on the dev splits of both generators with the whole
detector (`trunx bench amd --split dev --amd-config`), since only the whole call shows what a
missed or a false beep costs. `beep_threshold_matches_the_config` in tests/beep_model.rs ties
the two together; the metrics below are at that threshold.

Outputs:
  --out      models/beep.onnx          input "features" float32 [batch, K] (raw
                                       features: standardisation is inside the
                                       graph as Sub/Div), output "probs" float32
                                       [batch, 2], column 1 = beep probability.
  --metrics  models/beep_metrics.json  test-split metrics at threshold 0.5
                                       (beep iff probs[:, 1] >= 0.5) and run info.
  --probe    models/beep_probe.json    first 3 test rows of each class (raw features) and their
                                       probs, for the Rust parity test.

Run from the repository root:

    .venv/bin/python models/train_beep.py [--data models/beep_features.csv]
"""

import os

# Single-threaded BLAS: keeps float summation order, hence the trained weights, identical run to run.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 9
HIDDEN = 16
# Chosen on the dev splits (see the module doc); the same value as AmdConfig's default.
THRESHOLD = 0.2
# Nets averaged into the model (seeds seed .. seed + MEMBERS - 1).
MEMBERS = 5
PROBE_ROWS = 3
HERE = Path(__file__).resolve().parent


def fail(msg: str) -> None:
    sys.exit(f"train_beep.py: error: {msg}")


def load_csv(path: Path):
    """Return (features float64 [N, K], labels int64 [N], is_train bool [N], feature names)."""
    if not path.is_file():
        fail(f"data file not found: {path} (pass --data FILE)")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            fail(f"{path} is empty")
        header = [h.strip() for h in header]
        names = header[2:]
        if header[:2] != ["label", "split"] or not names:
            fail(f"{path}: header must start with 'label,split,f0', got {','.join(header[:3])!r}")
        for i, name in enumerate(names):
            if name != f"f{i}":
                fail(f"{path}: header column {i + 3} must be 'f{i}', got {name!r}")
        rows, labels, splits = [], [], []
        for lineno, rec in enumerate(reader, start=2):
            if not rec:
                continue
            if len(rec) != len(header):
                fail(f"{path}:{lineno}: expected {len(header)} fields, got {len(rec)}")
            label, split = rec[0].strip(), rec[1].strip()
            if label not in ("0", "1"):
                fail(f"{path}:{lineno}: label must be 0 or 1, got {label!r}")
            if split not in ("train", "test"):
                fail(f"{path}:{lineno}: split must be train or test, got {split!r}")
            try:
                rows.append([float(v) for v in rec[2:]])
            except ValueError as exc:
                fail(f"{path}:{lineno}: {exc}")
            labels.append(int(label))
            splits.append(split)
    x = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
    if not np.isfinite(x).all():
        fail(f"{path}: features contain NaN or infinity")
    y = np.array(labels, dtype=np.int64)
    is_train = np.array([s == "train" for s in splits], dtype=bool)
    for name, mask in (("train", is_train), ("test", ~is_train)):
        pos = int(y[mask].sum())
        neg = int(mask.sum()) - pos
        if pos == 0 or neg == 0:
            fail(f"{path}: {name} split needs both classes, has {pos} positives and {neg} negatives")
    return x, y, is_train, names


def train(x, y, seed, steps, lr, l2):
    """Full-batch Adam on class-balanced softmax cross-entropy; x is already standardised."""
    n, k = x.shape
    rng = np.random.default_rng(seed)
    lim1, lim2 = np.sqrt(6.0 / (k + HIDDEN)), np.sqrt(6.0 / (HIDDEN + 2))  # Glorot uniform
    params = {
        "W1": rng.uniform(-lim1, lim1, size=(k, HIDDEN)),
        "b1": np.zeros(HIDDEN),
        "W2": rng.uniform(-lim2, lim2, size=(HIDDEN, 2)),
        "b2": np.zeros(2),
    }
    counts = np.bincount(y, minlength=2)
    sample_w = (n / (2.0 * counts))[y]
    sample_w /= sample_w.sum()
    onehot = np.eye(2)[y]
    m = {key: np.zeros_like(v) for key, v in params.items()}
    v = {key: np.zeros_like(val) for key, val in params.items()}
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    loss = float("nan")
    for t in range(1, steps + 1):
        h = np.tanh(x @ params["W1"] + params["b1"])
        z = h @ params["W2"] + params["b2"]
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = float(-(sample_w * (onehot * logp).sum(axis=1)).sum()
                     + 0.5 * l2 * ((params["W1"] ** 2).sum() + (params["W2"] ** 2).sum()))
        dz = (np.exp(logp) - onehot) * sample_w[:, None]
        dh = (dz @ params["W2"].T) * (1.0 - h * h)
        grads = {
            "W2": h.T @ dz + l2 * params["W2"],
            "b2": dz.sum(axis=0),
            "W1": x.T @ dh + l2 * params["W1"],
            "b1": dh.sum(axis=0),
        }
        for key, g in grads.items():
            m[key] = beta1 * m[key] + (1 - beta1) * g
            v[key] = beta2 * v[key] + (1 - beta2) * g * g
            m_hat = m[key] / (1 - beta1**t)
            v_hat = v[key] / (1 - beta2**t)
            params[key] -= lr * m_hat / (np.sqrt(v_hat) + eps)
        if t == 1 or t % 500 == 0 or t == steps:
            print(f"  step {t:5d}  loss {loss:.5f}")
    return params, loss


def forward_f32(model, x):
    """Numpy float32 forward pass, op for op the same as the exported graph."""
    s = (x.astype(np.float32) - model["mean"]) / model["std"]
    total = np.zeros((len(x), 2), dtype=np.float32)
    for p32 in model["nets"]:
        h = np.tanh(s @ p32["W1"] + p32["b1"])
        z = h @ p32["W2"] + p32["b2"]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        total += e / e.sum(axis=1, keepdims=True)
    return total / np.float32(len(model["nets"]))


def export(model_params, k, seed, threshold) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Sub", ["features", "mean"], ["centered"]),
        helper.make_node("Div", ["centered", "std"], ["standardized"]),
    ]
    inits = [numpy_helper.from_array(model_params["mean"], "mean"),
             numpy_helper.from_array(model_params["std"], "std")]
    member_probs = []
    for m, p32 in enumerate(model_params["nets"]):
        n = lambda name: f"m{m}_{name}"  # noqa: E731
        nodes += [
            helper.make_node("MatMul", ["standardized", n("W1")], [n("h_lin")]),
            helper.make_node("Add", [n("h_lin"), n("b1")], [n("h_pre")]),
            helper.make_node("Tanh", [n("h_pre")], [n("hidden")]),
            helper.make_node("MatMul", [n("hidden"), n("W2")], [n("z_lin")]),
            helper.make_node("Add", [n("z_lin"), n("b2")], [n("logits")]),
            helper.make_node("Softmax", [n("logits")], [n("probs")], axis=-1),
        ]
        inits += [numpy_helper.from_array(p32[name], n(name)) for name in ("W1", "b1", "W2", "b2")]
        member_probs.append(n("probs"))
    inits.append(numpy_helper.from_array(
        np.array([1.0 / len(member_probs)], dtype=np.float32), "member_weight"))
    nodes += [
        helper.make_node("Sum", member_probs, ["probs_sum"]),
        helper.make_node("Mul", ["probs_sum", "member_weight"], ["probs"]),
    ]
    graph = helper.make_graph(
        nodes,
        "trunx_beep",
        inputs=[helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", k])],
        outputs=[helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 2])],
        initializer=inits,
        doc_string=f"Voicemail beep confirmation: raw features [batch, {k}] -> probs [batch, 2], "
        f"probs[:, 1] = P(beep), the mean of {len(member_probs)} nets. Standardisation is "
        "inside the graph.",
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="trunx/models/train_beep.py")
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {"feature_count": str(k), "seed": str(seed),
                                   "members": str(len(member_probs)),
                                   "threshold": str(threshold)})
    onnx.checker.check_model(model, full_check=True)
    return model


def binary_metrics(y, pred):
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": (tp + tn) / len(y),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "false_positive_rate": fp / (fp + tn) if fp + tn else 0.0,
        "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn},
    }


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=HERE / "beep_features.csv")
    ap.add_argument("--out", type=Path, default=HERE / "beep.onnx")
    ap.add_argument("--metrics", type=Path, default=HERE / "beep_metrics.json")
    ap.add_argument("--probe", type=Path, default=HERE / "beep_probe.json")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--l2", type=float, default=1e-4)
    ap.add_argument("--members", type=int, default=MEMBERS)
    ap.add_argument("--threshold", type=float, default=THRESHOLD)
    args = ap.parse_args()
    if args.members < 1:
        fail("--members must be at least 1")
    if not 0.0 < args.threshold < 1.0:
        fail("--threshold must be between 0 and 1")
    started = time.perf_counter()

    x, y, is_train, names = load_csv(args.data)
    k = len(names)
    x_tr, y_tr, x_te, y_te = x[is_train], y[is_train], x[~is_train], y[~is_train]
    print(f"{args.data}: {k} features, {len(y_tr)} train rows, {len(y_te)} test rows")

    mean = x_tr.mean(axis=0)
    std = x_tr.std(axis=0)
    std[std < 1e-6] = 1.0  # constant features: leave unscaled instead of dividing by ~0
    nets, losses = [], []
    for m in range(args.members):
        params, loss = train((x_tr - mean) / std, y_tr, args.seed + m, args.steps, args.lr,
                             args.l2)
        nets.append({name: val.astype(np.float32) for name, val in params.items()})
        losses.append(loss)
    final_loss = float(np.mean(losses))
    p32 = {"mean": mean.astype(np.float32), "std": std.astype(np.float32), "nets": nets}
    model = export(p32, k, args.seed, args.threshold)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, args.out)

    x_te32 = x_te.astype(np.float32)
    probs_np = forward_f32(p32, x_te32)
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
        probs_ort = None
        print("onnxruntime not installed: probe uses the numpy forward pass only")
    else:
        sess = ort.InferenceSession(str(args.out), providers=["CPUExecutionProvider"])
        probs_ort = sess.run(["probs"], {"features": x_te32})[0]
        diff = float(np.abs(probs_ort - probs_np).max())
        assert diff <= 1e-5, f"onnxruntime and numpy disagree by {diff}"
        print(f"onnxruntime {ort.__version__} matches numpy on the test split (max abs diff {diff:.2e})")

    threshold = args.threshold
    pred = (probs_np[:, 1] >= threshold).astype(np.int64)
    split_counts = {
        name: {"rows": int(len(ys)), "positives": int(ys.sum()), "negatives": int(len(ys) - ys.sum())}
        for name, ys in (("train", y_tr), ("test", y_te))
    }
    metrics = {
        "split": split_counts,
        "test": {"threshold": threshold, "decision": "beep iff probs[:, 1] >= threshold",
                 **binary_metrics(y_te, pred)},
        "train_accuracy": float((((forward_f32(p32, x_tr)[:, 1]) >= threshold) == y_tr).mean()),
        "final_train_loss": final_loss,
        "model_size_bytes": args.out.stat().st_size,
        "feature_count": k,
        "architecture": f"standardize -> mean of {args.members} x ({k}x{HIDDEN} tanh -> "
                        f"{HIDDEN}x2 softmax)",
        "training": {"seed": args.seed, "members": args.members, "steps": args.steps, "optimizer": "full-batch Adam",
                     "lr": args.lr, "l2": args.l2, "class_balanced_loss": True},
        "onnx_opset": OPSET,
        "onnx_ir_version": IR_VERSION,
        "versions": {"numpy": np.__version__, "onnx": onnx.__version__,
                     "onnxruntime": ort.__version__ if ort else None},
    }
    write_json(args.metrics, metrics)

    # Probe rows: the first test rows of each class, so both sides of the threshold are checked.
    neg = np.flatnonzero(y_te == 0)[:PROBE_ROWS]
    pos = np.flatnonzero(y_te == 1)[:PROBE_ROWS]
    pick = np.concatenate([neg, pos])
    n_probe = len(pick)
    y_te, x_te32 = y_te[pick], x_te32[pick]
    probs_np = probs_np[pick]
    probs_ort = probs_ort[pick] if probs_ort is not None else None
    probe_probs = probs_ort if probs_ort is not None else probs_np
    write_json(args.probe, {
        "feature_count": k,
        "labels": y_te[:n_probe].tolist(),
        "features": x_te32[:n_probe].tolist(),
        "probs": probe_probs[:n_probe].tolist(),
        "probs_numpy": probs_np[:n_probe].tolist(),
        "probs_source": "onnxruntime (checked against numpy to 1e-5)" if probs_ort is not None
        else "numpy forward pass",
    })

    t = metrics["test"]
    print(f"test: acc {t['accuracy']:.4f}  precision {t['precision']:.4f}  recall {t['recall']:.4f}  "
          f"f1 {t['f1']:.4f}  fpr {t['false_positive_rate']:.4f}")
    print(f"wrote {args.out} ({metrics['model_size_bytes']} bytes), {args.metrics}, {args.probe} "
          f"in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
