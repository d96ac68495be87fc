"""Test-vector files: one layer's inputs and golden outputs in one ``.npz`` (``cgaccel vectors``).

The format is public and specified in ``docs/vectors.md``; in short (``Ho``/``Wo`` as in
:func:`cgaccel.model.layer.output_size`):

=========  ==========  ================  ========================================================
key        dtype       shape             meaning
=========  ==========  ================  ========================================================
x          int8        [C, H, W]         input activations
w          int8        [K, C, R, S]      weights
bias       int32       [K]               added to the accumulator before scaling
thr        int32       [K]               gate threshold (psum_base > thr opens); unused if G = 1
mult       int32       [K]               requantization multiplier, >= 1
shift      int32       [K]               requantization shift, 1..62
stride     int32       []                stride, >= 1
pad        int32       []                zero padding, >= 0
groups     int32       []                CGNet groups G (1 = dense), divides C and K
relu       uint8       []                1 = apply ReLU last
res        int8        [K, Ho, Wo]       optional residual
omask      uint8       [K]               optional FBS output-channel mask (0/1)
imask      uint8       [C]               optional FBS input-channel mask (0/1)
gate       uint8       [K, Ho, Wo]       expected gate map
y          int8        [K, Ho, Wo]       expected output
=========  ==========  ================  ========================================================
"""

import argparse
import os
import sys

import numpy as np

from .data import make_layer
from .layer import gated_conv, output_size
from .resnet18 import LayerShape, get_layer, layer_names
from .stats import mac_stats

__all__ = ["INPUT_KEYS", "OPTIONAL_KEYS", "OUTPUT_KEYS", "add_arguments", "check_vectors",
           "layer_inputs", "load_vectors", "make_vectors", "run", "save_vectors"]

INPUT_KEYS = ("x", "w", "bias", "thr", "mult", "shift", "stride", "pad", "groups", "relu")
OPTIONAL_KEYS = ("res", "omask", "imask")
OUTPUT_KEYS = ("gate", "y")
SCALAR_KEYS = ("stride", "pad", "groups", "relu")
_DTYPES = dict(x=np.int8, w=np.int8, bias=np.int32, thr=np.int32, mult=np.int32, shift=np.int32,
               stride=np.int32, pad=np.int32, groups=np.int32, relu=np.uint8, res=np.int8,
               omask=np.uint8, imask=np.uint8, gate=np.uint8, y=np.int8)


# Building, saving, loading ------------------------------------------------------------------------

def make_vectors(shape, groups, density=0.3, seed=0, fbs_density=None, residual=False,
                 relu=False, *, mult_bits=31):
    """Inputs from :func:`cgaccel.model.data.make_layer` plus the golden ``gate`` and ``y``.

    Returns a dict in the file layout (every value a numpy array of the format's dtype).
    """
    d = make_layer(shape, groups, density, seed, fbs_density, residual, relu,
                   mult_bits=mult_bits)
    r = gated_conv(**d)
    out = {}
    for key, value in d.items():
        out[key] = np.asarray(value, dtype=_DTYPES[key])
    out["gate"] = r.gate
    out["y"] = r.y
    return out


def save_vectors(path, d):
    """Check ``d`` with :func:`check_vectors` and write it as a compressed ``.npz``."""
    check_vectors(d)
    arrays = {k: np.asarray(v, dtype=_DTYPES[k]) for k, v in d.items()}
    with open(path, "wb") as f:  # a file object keeps numpy from appending ".npz"
        np.savez_compressed(f, **arrays)


def load_vectors(path):
    """Read and check a vectors file.

    Returns a dict of numpy arrays, except ``stride``, ``pad``, ``groups`` (int) and ``relu``
    (bool), so that ``gated_conv(**layer_inputs(d))`` works directly.
    """
    with np.load(path, allow_pickle=False) as f:
        d = {k: f[k] for k in f.files}
    check_vectors(d)
    for key in ("stride", "pad", "groups"):
        d[key] = int(d[key])
    d["relu"] = bool(d["relu"])
    return d


def layer_inputs(d):
    """The keyword arguments of :func:`cgaccel.model.layer.gated_conv` held in ``d``."""
    out = {k: d[k] for k in INPUT_KEYS + OPTIONAL_KEYS if k in d}
    for key in ("stride", "pad", "groups"):
        out[key] = int(out[key])
    out["relu"] = bool(out["relu"])
    return out


# Validation --------------------------------------------------------------------------------------

def _arr(d, key):
    v = d[key]
    if key in SCALAR_KEYS and isinstance(v, (bool, int, np.integer, np.bool_)):
        return None  # a Python scalar, checked by value below
    if not isinstance(v, np.ndarray):
        raise TypeError(f"vectors key {key!r} must be a numpy array, not {type(v).__name__}")
    want = np.dtype(_DTYPES[key])
    if v.dtype != want:
        article = "an" if want.name.startswith("i") else "a"
        raise TypeError(f"vectors key {key!r} must be {article} {want} array, not {v.dtype}")
    return v


def _shape(d, key, shape, layout):
    v = _arr(d, key)
    if v.shape != tuple(shape):
        raise ValueError(f"vectors key {key!r} must have shape {tuple(shape)} {layout}, "
                         f"not {v.shape}")


def _scalar(d, key, lo, hi=None):
    v = _arr(d, key)
    if v is not None:
        if v.shape != ():
            raise ValueError(f"vectors key {key!r} must be a scalar (shape ()), not {v.shape}")
    value = int(d[key])
    if value < lo or (hi is not None and value > hi):
        span = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise ValueError(f"vectors key {key!r} must be {span}, not {value}")
    return value


def check_vectors(d, *, recompute=False):
    """Validate a vectors dict (as written or as loaded); raise TypeError/ValueError if bad.

    Checks the key set, every dtype and shape, the ranges of the scalars, ``mult``, ``shift``
    and the masks. With ``recompute=True`` it also re-runs the golden model and checks that
    ``gate`` and ``y`` match it.
    """
    if not isinstance(d, dict):
        raise TypeError(f"vectors must be a dict, not {type(d).__name__}")
    missing = [k for k in INPUT_KEYS + OUTPUT_KEYS if k not in d]
    if missing:
        raise ValueError(f"vectors must contain every required key, not miss "
                         f"{', '.join(missing)}")
    unknown = sorted(k for k in d if k not in _DTYPES)
    if unknown:
        raise ValueError(f"vectors keys must be among {', '.join(_DTYPES)}, not "
                         f"{', '.join(map(repr, unknown))}")
    x, w = _arr(d, "x"), _arr(d, "w")
    if x.ndim != 3:
        raise ValueError(f"vectors key 'x' must be 3-D [C, H, W], not shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"vectors key 'w' must be 4-D [K, C, R, S], not shape {w.shape}")
    C, H, W = x.shape
    K, _, R, S = w.shape
    _shape(d, "w", (K, C, R, S), "[K, C, R, S] with C from x")
    for key in ("bias", "thr", "mult", "shift"):
        _shape(d, key, (K,), "[K]")
    stride = _scalar(d, "stride", 1)
    pad = _scalar(d, "pad", 0)
    groups = _scalar(d, "groups", 1)
    _scalar(d, "relu", 0, 1)
    if min(C, H, W, K, R, S) < 1:
        raise ValueError(f"vectors x and w must have non-empty dimensions, not {x.shape} and "
                         f"{w.shape}")
    if C % groups or K % groups:
        raise ValueError(f"vectors key 'groups' must divide C={C} and K={K}, not {groups}")
    Ho, Wo = output_size(H, R, stride, pad), output_size(W, S, stride, pad)
    if (d["mult"] < 1).any():
        raise ValueError(f"vectors key 'mult' must be >= 1, not {int(d['mult'].min())}")
    if ((d["shift"] < 1) | (d["shift"] > 62)).any():
        bad = d["shift"][(d["shift"] < 1) | (d["shift"] > 62)][0]
        raise ValueError(f"vectors key 'shift' must be between 1 and 62, not {int(bad)}")
    for key, n in (("omask", K), ("imask", C)):
        if key in d:
            _shape(d, key, (n,), "[K]" if key == "omask" else "[C]")
            if (d[key] > 1).any():
                raise ValueError(f"vectors key {key!r} must hold only 0 and 1, not "
                                 f"{int(d[key].max())}")
    if "imask" in d:
        dead = np.flatnonzero((d["imask"] == 0) & (x != 0).reshape(C, -1).any(axis=1))
        if dead.size:
            raise ValueError(f"vectors key 'x' must be zero in the channels imask marks 0, not "
                             f"nonzero in channel {int(dead[0])}")
    for key in ("res", "gate", "y"):
        if key in d:
            _shape(d, key, (K, Ho, Wo), "[K, Ho, Wo]")
    if (d["gate"] > 1).any():
        raise ValueError(f"vectors key 'gate' must hold only 0 and 1, not {int(d['gate'].max())}")
    if recompute:
        r = gated_conv(**layer_inputs(d))
        for key in OUTPUT_KEYS:
            if not np.array_equal(getattr(r, key), d[key]):
                n = int((getattr(r, key) != d[key]).sum())
                raise ValueError(f"vectors key {key!r} must equal the golden model's output, "
                                 f"not differ in {n} elements")


# Command line ------------------------------------------------------------------------------------

def _parse_shape(text):
    parts = text.split(",")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        vals = None
    if vals is None or len(vals) != 8:
        raise ValueError(f"--shape must be eight integers C,H,W,K,R,S,STRIDE,PAD, not {text!r}")
    C, H, W, K, R, S, stride, pad = vals
    return LayerShape("custom", C, H, W, K, R, S, stride, pad)


def add_arguments(parser):
    """Arguments of ``cgaccel vectors``."""
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--layer", metavar="NAME",
                     help="ResNet-18 layer, e.g. cifar.layer2.0.conv1 (see --list)")
    src.add_argument("--shape", metavar="C,H,W,K,R,S,STRIDE,PAD", help="custom layer geometry")
    src.add_argument("--list", action="store_true", help="print the layer names and exit")
    parser.add_argument("--scale", type=int, default=1, metavar="S",
                        help="with --layer: divide C, K, H, W by S (default: 1)")
    parser.add_argument("--groups", type=int, default=1, metavar="G",
                        help="CGNet groups; 1 = dense layer (default: 1)")
    parser.add_argument("--density", type=float, default=0.3, metavar="D",
                        help="target fraction of open gates (default: 0.3)")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="(default: 0)")
    parser.add_argument("--fbs-density", type=float, default=None, metavar="F",
                        help="generate FBS masks keeping this fraction of channels")
    parser.add_argument("--residual", action="store_true", help="add a residual input")
    parser.add_argument("--relu", action="store_true", help="apply ReLU")
    parser.add_argument("--mult-bits", type=int, default=31, metavar="B",
                        help="bits of the generated requant multipliers (default: 31)")
    parser.add_argument("--out", metavar="FILE.npz", help="output file")


def run(args):
    """Write one vectors file; print a one-line summary. Returns a process exit status."""
    if args.list:
        print("\n".join(layer_names()))
        return 0
    try:
        if args.layer is None and args.shape is None:
            raise ValueError("vectors source must be --layer NAME or --shape ..., not neither")
        if args.out is None:
            raise ValueError("--out must name the output .npz file, not be missing")
        if args.layer is not None:
            shape = get_layer(args.layer, args.scale)
        else:
            if args.scale != 1:
                raise ValueError(f"--scale must be used with --layer, not with --shape "
                                 f"(got {args.scale})")
            shape = _parse_shape(args.shape)
        d = make_vectors(shape, args.groups, args.density, args.seed, args.fbs_density,
                         args.residual, args.relu, mult_bits=args.mult_bits)
        parent = os.path.dirname(os.path.abspath(args.out))
        os.makedirs(parent, exist_ok=True)
        save_vectors(args.out, d)
    except (TypeError, ValueError) as exc:
        print(f"cgaccel vectors: {exc}", file=sys.stderr)
        return 2
    st = mac_stats(d["gate"], shape.C, shape.R, shape.S, args.groups, d.get("omask"),
                   d.get("imask"))
    on = d.get("omask", np.ones(shape.K, np.uint8)).astype(bool)
    print(f"{args.out}: {shape.name} C={shape.C} H={shape.H} W={shape.W} K={shape.K} "
          f"R={shape.R} S={shape.S} stride={shape.stride} pad={shape.pad} groups={args.groups} "
          f"open gates {d['gate'][on].mean():.3f} MACs {st.executed}/{st.dense} "
          f"(reduction {st.reduction:.2f}x)")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cgaccel.model.vectors",
                                     description="write a test-vector file from the golden model")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
