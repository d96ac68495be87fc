"""Whole-network file: an int8 channel-gated CNN that a host driver runs layer after layer.

File format (one ``.npz``, loadable with ``numpy.load(path, allow_pickle=False)``)
------------------------------------------------------------------------------------
``manifest``
    0-d unicode array holding a JSON object:

    * ``format`` = ``"cgaccel-network"``, ``version`` = 1.
    * ``input``: ``{"name": "image", "shape": [C, H, W], "scale": s}``: the int8 image ``x_q``
      stands for ``x_q * s``.
    * ``tensors``: ``{name: {"shape": [C, H, W], "scale": s}}`` for every activation tensor
      (including the input); all activations are int8 with zero point 0.
    * ``layers``: list, in execution order, of conv layers. Each has ``name``; ``input``,
      ``output`` (tensor names); ``res`` (tensor name added after requantization, or null);
      ``kernel``, ``stride``, ``pad``, ``groups``, ``relu``; ``fbs`` (null or ``{"keep": n}``:
      the layer computes a per-image output mask keeping ``n`` channels, see below);
      ``imask_from`` (null or the name of the earlier FBS layer whose output mask is this
      layer's input mask). Every layer is exactly one call of
      :func:`cgaccel.model.layer.gated_conv` with the arrays ``<name>.w`` (int8 [K,C,R,S]),
      ``<name>.bias``, ``<name>.mult``, ``<name>.shift`` (int32 [K]) and, when ``groups > 1``,
      ``<name>.thr`` (int32 [K]).
    * ``head``: ``{"op": "avgpool_fc", "input": name, "classes": n, "scale": s}``: with
      ``pool = x.sum(axis=(1, 2))`` (int64) of the int8 input tensor, the integer logits are
      ``head.w @ pool + head.bias`` (``head.w`` int8 [n, C], ``head.bias`` int64 [n]) and the
      float logits are those times ``scale``. The class is the argmax (first on ties).
    * ``metrics``, ``training``: figures measured when the file was made (accuracies, gate
      densities, MAC counts; the training settings). ``metrics.int8_correct`` is what
      :func:`run_network` scores on the test split named in ``metrics.test_set``.

FBS output mask of a layer with ``fbs`` (integer, so every host computes the same mask): with
``sums = x.sum(axis=(1, 2))`` (int64) of the layer input, the saliency is
``<name>.pred_w @ sums + <name>.pred_b`` (int8 [K, C] and int64 [K]); the ``keep`` channels of
highest saliency get mask 1 (ties: lower channel index first), the others 0.
"""

import json
from dataclasses import dataclass, field

import numpy as np

from .model.layer import gated_conv, output_size
from .model.vectors import save_vectors

__all__ = ["FORMAT", "VERSION", "Network", "load_network", "save_network", "fbs_mask",
           "run_network", "LayerTrace", "layer_args", "layer_vectors", "write_vectors"]

FORMAT = "cgaccel-network"
VERSION = 1

_LAYER_KEYS = ("name", "input", "output", "res", "kernel", "stride", "pad", "groups", "relu",
               "fbs", "imask_from")


@dataclass
class Network:
    """An int8 network: the manifest (see module docstring) and its named arrays."""

    manifest: dict
    arrays: dict = field(repr=False)

    @property
    def layers(self):
        return self.manifest["layers"]

    def tensor(self, layer, key):
        """Array ``<layer>.<key>``."""
        return self.arrays[f"{layer}.{key}"]

    def validate(self):
        """Check the manifest and arrays are consistent; raise ValueError naming the problem."""
        m = self.manifest
        if m.get("format") != FORMAT:
            raise ValueError(f"Network format must be {FORMAT!r}, not {m.get('format')!r}")
        if m.get("version") != VERSION:
            raise ValueError(f"Network version must be {VERSION}, not {m.get('version')!r}")
        tensors = m["tensors"]
        known = {m["input"]["name"]}
        names = set()
        fbs_layers = set()
        for layer in m["layers"]:
            missing = [k for k in _LAYER_KEYS if k not in layer]
            if missing:
                raise ValueError(f"Layer entry must have keys {', '.join(missing)}, not "
                                 f"{sorted(layer)}")
            n = layer["name"]
            if n in names:
                raise ValueError(f"Layer names must be unique, not {n!r} twice")
            names.add(n)
            for ref in ("input", "res"):
                t = layer[ref]
                if t is not None and t not in known:
                    raise ValueError(f"Layer {n} {ref} must be an earlier tensor, not {t!r}")
            if layer["imask_from"] is not None and layer["imask_from"] not in fbs_layers:
                raise ValueError(f"Layer {n} imask_from must be an earlier FBS layer, not "
                                 f"{layer['imask_from']!r}")
            if layer["output"] not in tensors:
                raise ValueError(f"Layer {n} output must be listed in tensors, not "
                                 f"{layer['output']!r}")
            C, H, W = tensors[layer["input"]]["shape"]
            K, Ho, Wo = tensors[layer["output"]]["shape"]
            R = layer["kernel"]
            want = [K, output_size(H, R, layer["stride"], layer["pad"]),
                    output_size(W, R, layer["stride"], layer["pad"])]
            if [K, Ho, Wo] != want:
                raise ValueError(f"Layer {n} output shape must be {want}, not {[K, Ho, Wo]}")
            if layer["res"] is not None and tensors[layer["res"]]["shape"] != want:
                raise ValueError(f"Layer {n} residual shape must be {want}, not "
                                 f"{tensors[layer['res']]['shape']}")
            w = self.tensor(n, "w")
            if w.dtype != np.int8 or w.shape != (K, C, R, R):
                raise ValueError(f"Layer {n} w must be int8 {(K, C, R, R)}, not {w.dtype} "
                                 f"{w.shape}")
            tables = ["bias", "mult", "shift"] + (["thr"] if layer["groups"] > 1 else [])
            for key in tables:
                a = self.tensor(n, key)
                if a.dtype != np.int32 or a.shape != (K,):
                    raise ValueError(f"Layer {n} {key} must be int32 ({K},), not {a.dtype} "
                                     f"{a.shape}")
            if layer["fbs"] is not None:
                keep = layer["fbs"].get("keep")
                if not isinstance(keep, int) or not 1 <= keep <= K:
                    raise ValueError(f"Layer {n} FBS keep must be an integer between 1 and {K}, "
                                     f"not {keep!r}")
                fbs_layers.add(n)
                if self.tensor(n, "pred_w").shape != (K, C):
                    raise ValueError(f"Layer {n} pred_w must have shape {(K, C)}")
            known.add(layer["output"])
        head = m["head"]
        if head["input"] not in known:
            raise ValueError(f"Head input must be a network tensor, not {head['input']!r}")
        return self


def save_network(path, net):
    """Write ``net`` to ``path`` (compressed npz, see module docstring)."""
    net.validate()
    np.savez_compressed(path, manifest=np.array(json.dumps(net.manifest, indent=1)),
                        **net.arrays)


def load_network(path):
    """Read and validate a network file."""
    with np.load(path, allow_pickle=False) as f:
        manifest = json.loads(str(f["manifest"]))
        arrays = {k: f[k] for k in f.files if k != "manifest"}
    return Network(manifest, arrays).validate()


def fbs_mask(net, layer, x):
    """FBS output mask (uint8 [K]) of ``layer`` (a manifest entry) for its int8 input ``x``."""
    n = layer["name"]
    sums = x.astype(np.int64).sum(axis=(1, 2))
    sal = net.tensor(n, "pred_w").astype(np.int64) @ sums + net.tensor(n, "pred_b")
    order = np.argsort(-sal, kind="stable")
    mask = np.zeros(sal.shape[0], dtype=np.uint8)
    mask[order[:layer["fbs"]["keep"]]] = 1
    return mask


@dataclass
class LayerTrace:
    """One layer evaluation: the exact ``gated_conv`` arguments and its result."""

    layer: dict
    kwargs: dict
    result: object


def layer_args(net, layer, env, masks):
    """``gated_conv`` keyword arguments of ``layer`` given the tensors and FBS masks so far."""
    n = layer["name"]
    kw = {"x": env[layer["input"]], "w": net.tensor(n, "w"), "bias": net.tensor(n, "bias"),
          "thr": net.tensor(n, "thr") if layer["groups"] > 1 else None,
          "mult": net.tensor(n, "mult"), "shift": net.tensor(n, "shift"),
          "stride": layer["stride"], "pad": layer["pad"], "groups": layer["groups"],
          "relu": bool(layer["relu"])}
    if layer["res"] is not None:
        kw["res"] = env[layer["res"]]
    if layer["fbs"] is not None:
        kw["omask"] = fbs_mask(net, layer, kw["x"])
    if layer["imask_from"] is not None:
        kw["imask"] = masks[layer["imask_from"]]
    return kw


def run_network(net, image, *, trace=None):
    """Run the int8 network on one image with the golden model, layer after layer.

    Parameters
    ----------
    net : Network or str or path
    image : ndarray, int8, [C, H, W]
        Quantized input (see ``manifest["input"]``).
    trace : list, optional
        Receives a :class:`LayerTrace` per layer.

    Returns
    -------
    ndarray, float64, [classes]
        Logits (integer logits times the head scale).

    Raises
    ------
    TypeError, ValueError
        If ``image`` is not an int8 array of the input shape.
    """
    if not isinstance(net, Network):
        net = load_network(net)
    m = net.manifest
    if not isinstance(image, np.ndarray) or image.dtype != np.int8:
        raise TypeError(f"Image must be an int8 numpy array, not "
                        f"{getattr(image, 'dtype', type(image).__name__)}")
    shape = tuple(m["input"]["shape"])
    if image.shape != shape:
        raise ValueError(f"Image must have shape {shape}, not {image.shape}")
    env = {m["input"]["name"]: image}
    masks = {}
    for layer in m["layers"]:
        kw = layer_args(net, layer, env, masks)
        result = gated_conv(**kw)
        if "omask" in kw:
            masks[layer["name"]] = kw["omask"]
        env[layer["output"]] = result.y
        if trace is not None:
            trace.append(LayerTrace(layer, kw, result))
    head = m["head"]
    pool = env[head["input"]].astype(np.int64).sum(axis=(1, 2))
    logits = net.arrays["head.w"].astype(np.int64) @ pool + net.arrays["head.bias"]
    return logits.astype(np.float64) * head["scale"]


def layer_vectors(net, image, layers=None):
    """Golden-model vectors (the ``cgaccel.model.vectors`` layout) of layers of one run.

    Parameters
    ----------
    net : Network
    image : ndarray, int8, [C, H, W]
    layers : iterable of str, optional
        Layer names to keep (default: every layer).

    Returns
    -------
    dict of layer name -> vectors dict (``x``, ``w``, ... , ``gate``, ``y``)
    """
    trace = []
    run_network(net, image, trace=trace)
    keep = None if layers is None else set(layers)
    out = {}
    for t in trace:
        name = t.layer["name"]
        if keep is not None and name not in keep:
            continue
        d = {k: v for k, v in t.kwargs.items() if v is not None}
        if "thr" not in d:  # dense layer: the format still carries a (unused) threshold table
            d["thr"] = np.zeros(d["w"].shape[0], dtype=np.int32)
        for k in ("stride", "pad", "groups"):
            d[k] = np.int32(d[k])
        d["relu"] = np.uint8(d["relu"])
        d["gate"] = t.result.gate
        d["y"] = t.result.y
        out[name] = d
    return out


def write_vectors(net, image, outdir, tag, layers=None):
    """Write :func:`layer_vectors` as ``<outdir>/<layer>.<tag>.npz``; return the paths."""
    import os

    os.makedirs(outdir, exist_ok=True)
    paths = []
    for name, d in layer_vectors(net, image, layers).items():
        path = os.path.join(outdir, f"{name}.{tag}.npz")
        save_vectors(path, d)
        paths.append(path)
    return paths
