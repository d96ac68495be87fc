"""Score an int8 network file with the golden model: accuracy, gate density, MAC counts.

Torch-free: this is what the tests run on the shipped files.
"""

import hashlib

import numpy as np

from ..netfile import run_network
from .data import quantize_pixels

__all__ = ["evaluate_network", "load_test_set", "split_digest"]


def load_test_set(path):
    """``(pixels uint8 [N, 8, 8], labels uint8 [N])`` from a test-set npz."""
    with np.load(path, allow_pickle=False) as f:
        return f["pixels"], f["labels"]


def split_digest(pixels, labels):
    """SHA-256 of the test split (pixels then labels, raw bytes), stored in network metrics."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())
    h.update(np.ascontiguousarray(labels, dtype=np.uint8).tobytes())
    return h.hexdigest()


def evaluate_network(net, pixels, labels):
    """Run ``net`` on every image and gather figures.

    Returns
    -------
    dict
        ``int8_correct``, ``n_test``, ``int8_accuracy``; ``layers``: per layer name a dict with
        ``gate_density`` (fraction of possible conditional-path work done, over unmasked
        channels; None for dense layers), ``omask_density`` (mean kept fraction of output
        channels; None without FBS), ``macs_dense`` and ``macs_executed`` (summed over the
        images) and ``mac_reduction``; ``macs_dense``/``macs_executed``/``mac_reduction`` of the
        whole network (convs only).
    """
    x = quantize_pixels(pixels)
    n = len(labels)
    correct = 0
    acc = {}
    for i in range(n):
        trace = []
        logits = run_network(net, x[i][None], trace=trace)
        correct += int(np.argmax(logits) == labels[i])
        for t in trace:
            a = acc.setdefault(t.layer["name"], {"dense": 0, "exec": 0, "cond": 0, "poss": 0,
                                                 "kept": 0, "chan": 0})
            st = t.result.stats
            a["dense"] += st.dense
            a["exec"] += st.executed
            a["cond"] += st.conditional
            a["poss"] += st.conditional_possible
            om = t.kwargs.get("omask")
            if om is not None:
                a["kept"] += int(om.sum())
                a["chan"] += om.size
    layers = {}
    for layer in net.layers:
        a = acc[layer["name"]]
        layers[layer["name"]] = {
            "gate_density": a["cond"] / a["poss"] if layer["groups"] > 1 else None,
            "omask_density": a["kept"] / a["chan"] if a["chan"] else None,
            "macs_dense": a["dense"], "macs_executed": a["exec"],
            "mac_reduction": a["dense"] / a["exec"],
        }
    dense = sum(v["macs_dense"] for v in layers.values())
    executed = sum(v["macs_executed"] for v in layers.values())
    return {"int8_correct": correct, "n_test": n, "int8_accuracy": correct / n,
            "layers": layers, "macs_dense": dense, "macs_executed": executed,
            "mac_reduction": dense / executed}
