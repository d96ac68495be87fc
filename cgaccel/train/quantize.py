"""Post-training int8 quantization of the float network, in numpy.

* Activations: per tensor, symmetric, zero point 0, ``scale = max|a| / 127`` over a calibration
  set. Tensors joined by an identity residual (block input and block output) share one scale
  so the add needs no rescale; a layer writing a tensor also covers its own pre-residual range.
* Weights: batch norm folded in (``w' = w * gamma / sqrt(var + eps)``,
  ``b' = beta - mu * gamma / sqrt(var + eps)``), then per output channel symmetric int8,
  ``scale_w[k] = max|w'[k]| / 127``.
* Requantization: ``bias = round(b' / (s_x * s_w))``, multiplier ``s_x * s_w / s_y`` as
  ``mult / 2**shift`` with ``mult`` in ``[2**30, 2**31)``.
* Gate: the float gate opens where ``BN_g(psum_base) > Delta``, i.e. where the raw base-path sum
  exceeds ``T = mu_g + Delta * sqrt(var_g + eps)``; in the int8 domain (folded weights) that is
  ``psum_base > floor(a * T / (s_x * s_w))``, computed by
  :func:`cgaccel.model.threshold.fold_bn_threshold`.
* FBS predictor: per tensor int8 weights; bias in the integer domain of ``pred_w @ sums``.
* Head: global average pool + linear, per tensor int8 weights, integer logits times one scale.
"""

import math

import numpy as np

from ..model.layer import output_size
from ..model.threshold import fold_bn_threshold
from ..netfile import FORMAT, VERSION, Network

__all__ = ["BN_EPS", "quantize_network", "requant_multiplier", "shared_scales"]

BN_EPS = 1e-5
_I32 = (-(1 << 31), (1 << 31) - 1)


def requant_multiplier(m):
    """``(mult, shift)`` with ``mult / 2**shift`` closest to ``m`` and mult in [2**30, 2**31).

    Raises
    ------
    ValueError
        If ``m`` is not positive or needs a shift outside 1..62.
    """
    if not m > 0:
        raise ValueError(f"Requant multiplier must be positive, not {m}")
    frac, exp = math.frexp(m)  # m = frac * 2**exp, frac in [0.5, 1)
    mult = round(frac * (1 << 31))
    shift = 31 - exp
    if mult == 1 << 31:
        mult //= 2
        shift -= 1
    if not 1 <= shift <= 62:
        raise ValueError(f"Requant multiplier must be between 2**-31 and 2**30, not {m}")
    return mult, shift


def _round_i32(a):
    return np.clip(np.round(a), *_I32).astype(np.int32)


def shared_scales(specs, amax, input_scale):
    """Activation scale of every tensor.

    Parameters
    ----------
    specs : list of ConvSpec
    amax : dict
        ``max|a|`` per tensor name and per layer name (the layer's pre-residual output).
    input_scale : float
        Fixed scale of ``"image"``.
    """
    parent = {}

    def find(t):
        while parent.setdefault(t, t) != t:
            t = parent[t]
        return t

    for s in specs:
        find(s.output)
        if s.res is not None:
            parent[find(s.output)] = find(s.res)
    span = {}
    for s in specs:
        root = find(s.output)
        span[root] = max(span.get(root, 0.0), amax[s.output], amax[s.name])
    if find("image") in span:
        raise ValueError("Image tensor must not share a scale with a layer output, not tied")
    scales = {"image": input_scale}
    for s in specs:
        scales[s.output] = max(span[find(s.output)], 1e-8) / 127.0
    return scales


def _bn_fold(state, prefix):
    gamma = state[f"{prefix}.weight"]
    a = gamma / np.sqrt(state[f"{prefix}.running_var"] + BN_EPS)
    b = state[f"{prefix}.bias"] - state[f"{prefix}.running_mean"] * a
    return a, b


def quantize_network(state, specs, amax, input_shape, input_scale, *, fbs_keep=None,
                     classes=10):
    """Build the int8 :class:`~cgaccel.netfile.Network` of a float network.

    Parameters
    ----------
    state : dict of str -> ndarray
        Float state dict of :class:`~cgaccel.train.nets.GatedResNet` (numpy, any float dtype).
    specs : list of ConvSpec
        Its wiring.
    amax : dict
        Calibration ranges (see :func:`shared_scales`).
    input_shape : tuple (C, H, W)
    input_scale : float
    fbs_keep : dict of layer name -> int, optional
        Channels kept by each FBS layer.
    classes : int

    Returns
    -------
    Network
        With empty ``metrics``/``training`` (filled in by the caller).
    """
    state = {k: np.asarray(v, dtype=np.float64) for k, v in state.items()}
    scales = shared_scales(specs, amax, input_scale)
    shapes = {"image": list(input_shape)}
    arrays = {}
    layers = []
    for s in specs:
        C, H, W = shapes[s.input]
        Ho = output_size(H, s.kernel, s.stride, s.pad)
        Wo = output_size(W, s.kernel, s.stride, s.pad)
        shapes[s.output] = [s.cout, Ho, Wo]
        key = "layers." + s.name.replace(".", "_")
        sx, sy = scales[s.input], scales[s.output]
        a, b = _bn_fold(state, f"{key}.bn")
        if (a <= 0).any():
            raise ValueError(f"Layer {s.name} BN scale must be positive, not {a.min()}")
        wf = state[f"{key}.conv.weight"] * a[:, None, None, None]
        sw = np.abs(wf).reshape(s.cout, -1).max(axis=1) / 127.0
        sw[sw == 0] = 1.0
        wq = np.clip(np.round(wf / sw[:, None, None, None]), -127, 127).astype(np.int8)
        n = s.name
        arrays[f"{n}.w"] = wq
        arrays[f"{n}.bias"] = _round_i32(b / (sx * sw))
        mults = [requant_multiplier(float(v)) for v in sx * sw / sy]
        arrays[f"{n}.mult"] = np.array([m for m, _ in mults], dtype=np.int32)
        arrays[f"{n}.shift"] = np.array([sh for _, sh in mults], dtype=np.int32)
        if s.groups > 1:
            # The gate BN is non-affine (gamma 1, beta 0) and sees the raw conv sum, whose
            # weight LSB is sw / a once the output BN scale a is folded into the weights.
            ones = np.ones(s.cout)
            arrays[f"{n}.thr"] = fold_bn_threshold(
                ones, 0 * ones, state[f"{key}.gate_bn.running_mean"],
                state[f"{key}.gate_bn.running_var"], BN_EPS, state[f"{key}.delta"],
                x_scale=sx, w_scale=sw / a)
        fbs = None
        if s.fbs:
            p = state[f"{key}.pred.weight"]
            sp = max(np.abs(p).max(), 1e-12) / 127.0
            arrays[f"{n}.pred_w"] = np.clip(np.round(p / sp), -127, 127).astype(np.int8)
            arrays[f"{n}.pred_b"] = np.round(state[f"{key}.pred.bias"] * H * W
                                             / (sp * sx)).astype(np.int64)
            fbs = {"keep": int(fbs_keep[n])}
        layers.append({"name": n, "input": s.input, "output": s.output, "res": s.res,
                       "kernel": s.kernel, "stride": s.stride, "pad": s.pad,
                       "groups": s.groups, "relu": s.relu, "fbs": fbs,
                       "imask_from": s.imask_from})
    last = specs[-1].output
    C, H, W = shapes[last]
    fw = state["fc.weight"]
    sf = max(np.abs(fw).max(), 1e-12) / 127.0
    arrays["head.w"] = np.clip(np.round(fw / sf), -127, 127).astype(np.int8)
    head_scale = sf * scales[last] / (H * W)
    arrays["head.bias"] = np.round(state["fc.bias"] / head_scale).astype(np.int64)
    manifest = {
        "format": FORMAT, "version": VERSION,
        "input": {"name": "image", "shape": list(input_shape), "scale": input_scale},
        "tensors": {t: {"shape": shapes[t], "scale": scales[t]} for t in shapes},
        "layers": layers,
        "head": {"op": "avgpool_fc", "input": last, "classes": classes,
                 "scale": head_scale},
        "metrics": {}, "training": {},
    }
    return Network(manifest, arrays).validate()
