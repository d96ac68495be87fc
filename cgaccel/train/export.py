"""Checkpoint -> int8 network file (+ scores), using torch only for calibration."""

import copy

import numpy as np
import torch

from ..netfile import save_network
from .data import INPUT_SCALE, load_digits_split
from .evaluate import evaluate_network, split_digest
from .loop import evaluate, to_input
from .quantize import quantize_network

__all__ = ["build_network", "calibrate", "export_network"]


@torch.no_grad()
def calibrate(model, x):
    """``max|a|`` of every tensor and every layer's pre-residual output over images ``x``.

    Run in float64 on a copy and rounded to float32: a float32 forward pass sums in a different
    order on another CPU (torch's AVX2 and AVX-512 kernels), which moved these maxima by an ulp
    and every requantization multiplier derived from them, so the same checkpoint exported to
    different networks on different machines.
    """
    wide = copy.deepcopy(model).double().eval()
    rec = {}
    wide(x.double(), record=rec)
    return {k: float(np.float32(v.abs().max().item())) for k, v in rec.items()}


def build_network(model, train_pixels):
    """Calibrate ``model`` on ``train_pixels`` and quantize it (no scoring, no files)."""
    amax = calibrate(model, to_input(train_pixels))
    state = {k: v.numpy() for k, v in model.state_dict().items() if v.is_floating_point()}
    fbs_keep = {s.name: u.keep for s, u in model.units() if s.fbs}
    return quantize_network(state, model.specs, amax, (1, 8, 8), INPUT_SCALE,
                            fbs_keep=fbs_keep)


def export_network(model, meta, net_path, test_path=None, log=print):
    """Quantize ``model``, score float and int8 versions on the test split, write the files.

    Parameters
    ----------
    model : GatedResNet
        Eval mode (as returned by :func:`~cgaccel.train.loop.load_checkpoint`).
    meta : dict
        Checkpoint meta (stored as the network's ``training`` entry).
    net_path : path
        Network file to write.
    test_path : path, optional
        Where to write the test split (``pixels``, ``labels``).

    Returns
    -------
    Network
    """
    data = load_digits_split()
    net = build_network(model, data["train_pixels"])
    xt = to_input(data["test_pixels"])
    yt = torch.from_numpy(data["test_labels"].astype(np.int64))
    fc, n, fd = evaluate(model, xt, yt)
    gated = [s.name for s in model.specs if s.groups > 1]
    metrics = evaluate_network(net, data["test_pixels"], data["test_labels"])
    metrics.update({
        "float_correct": fc, "float_accuracy": fc / n,
        "float_gate_density": dict(zip(gated, fd, strict=True)),
        "test_set": "digits_test.npz",
        "test_set_sha256": split_digest(data["test_pixels"], data["test_labels"]),
    })
    net.manifest["metrics"] = metrics
    net.manifest["training"] = meta
    save_network(net_path, net)
    if test_path is not None:
        np.savez_compressed(test_path, pixels=data["test_pixels"], labels=data["test_labels"])
    log(f"float {fc}/{n}  int8 {metrics['int8_correct']}/{n}  "
        f"MAC reduction {metrics['mac_reduction']:.3f}")
    return net
