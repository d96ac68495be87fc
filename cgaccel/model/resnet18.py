"""Every convolution layer of ResNet-18, in ImageNet and CIFAR-10 geometry.

Names are ``<geometry>.<layer>``:

* ``<geometry>`` is ``imagenet`` (224x224 RGB input; conv1 7x7 stride 2 pad 3 to 112x112, then a
  3x3 stride-2 max-pool to 56x56) or ``cifar`` (32x32 RGB input; conv1 3x3 stride 1 pad 1, no
  max-pool);
* ``<layer>`` is ``conv1`` or ``layer{L}.{B}.conv{1,2}`` (stage L = 1..4, basic block B = 0, 1)
  or ``layer{L}.0.downsample`` (the 1x1 stride-2 projection shortcut of stages 2..4), the
  module names of torchvision's ``resnet18``.

Stage L has ``64 * 2**(L-1)`` channels; ``layer{L}.0.conv1`` (L >= 2) and the downsample conv have
stride 2. ImageNet stage inputs are 56, 56, 28, 14 pixels square (outputs 56, 28, 14, 7); CIFAR
stage inputs 32, 32, 16, 8 (outputs 32, 16, 8, 4). :func:`layers` returns the 20 convs of a
geometry in network order (``conv1``, then per block ``conv1``, ``conv2`` and, in the first block
of stages 2..4, ``downsample``).

``scaled(shape, s)`` shrinks channels and spatial size by an integer factor for fast RTL tests.
"""

import re
from dataclasses import dataclass, replace

from .layer import output_size

__all__ = ["GEOMETRIES", "LayerShape", "get_layer", "layer_names", "layers", "scaled",
           "total_macs"]

GEOMETRIES = ("imagenet", "cifar")


def _check_pos_int(name, value, lo):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, not {value}")


@dataclass(frozen=True)
class LayerShape:
    """Geometry of one convolution: input ``[C, H, W]``, weights ``[K, C, R, S]``.

    Members
    -------
    name : str
    C, H, W : int
        Input channels, height, width.
    K, R, S : int
        Output channels, kernel height, kernel width.
    stride, pad : int
        Same stride and zero padding on both spatial axes.
    """

    name: str
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    stride: int
    pad: int

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a string, not {self.name!r}")
        for attr in ("C", "H", "W", "K", "R", "S", "stride"):
            _check_pos_int(attr, getattr(self, attr), 1)
        _check_pos_int("pad", self.pad, 0)
        output_size(self.H, self.R, self.stride, self.pad)
        output_size(self.W, self.S, self.stride, self.pad)

    @property
    def Ho(self):
        """Output height."""
        return output_size(self.H, self.R, self.stride, self.pad)

    @property
    def Wo(self):
        """Output width."""
        return output_size(self.W, self.S, self.stride, self.pad)

    @property
    def dense_macs(self):
        """``K * C * R * S * Ho * Wo``."""
        return self.K * self.C * self.R * self.S * self.Ho * self.Wo

    @property
    def weight_count(self):
        """``K * C * R * S``."""
        return self.K * self.C * self.R * self.S


def _build(geometry):
    if geometry == "imagenet":
        out = [LayerShape("imagenet.conv1", 3, 224, 224, 64, 7, 7, 2, 3)]
        size = 56  # after the 3x3/2 max-pool
    else:
        out = [LayerShape("cifar.conv1", 3, 32, 32, 64, 3, 3, 1, 1)]
        size = 32
    cin = 64
    for stage in range(1, 5):
        ch = 64 << (stage - 1)
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            pre = f"{geometry}.layer{stage}.{block}"
            out.append(LayerShape(f"{pre}.conv1", cin, size, size, ch, 3, 3, stride, 1))
            osize = output_size(size, 3, stride, 1)
            out.append(LayerShape(f"{pre}.conv2", ch, osize, osize, ch, 3, 3, 1, 1))
            if stride != 1 or cin != ch:
                out.append(LayerShape(f"{pre}.downsample", cin, size, size, ch, 1, 1, stride, 0))
            cin, size = ch, osize
    return tuple(out)


_LAYERS = {g: _build(g) for g in GEOMETRIES}
_BY_NAME = {s.name: s for g in GEOMETRIES for s in _LAYERS[g]}


def layers(geometry):
    """All conv layers of ResNet-18 in ``geometry`` ("imagenet" or "cifar"), in network order."""
    if geometry not in _LAYERS:
        raise ValueError(f"geometry must be one of {', '.join(GEOMETRIES)}, not {geometry!r}")
    return _LAYERS[geometry]


def layer_names(geometry=None):
    """Names of every layer (of one geometry, or of both)."""
    geos = GEOMETRIES if geometry is None else (geometry,)
    return [s.name for g in geos for s in layers(g)]


def total_macs(geometry):
    """Dense conv MACs of one whole network."""
    return sum(s.dense_macs for s in layers(geometry))


def scaled(shape, scale, *, min_channels=1):
    """Shrink a layer for fast tests: C, K, H, W divided by ``scale`` (floored).

    R, S, stride and pad are kept. Channels do not go below ``min(min_channels, original)`` and
    H, W do not go below the kernel size, so the output is at least 1x1. ``scale == 1`` returns
    ``shape`` unchanged; otherwise the name gets a ``/s{scale}`` suffix.
    """
    if not isinstance(shape, LayerShape):
        raise TypeError(f"shape must be a LayerShape, not {shape!r}")
    _check_pos_int("scale", scale, 1)
    _check_pos_int("min_channels", min_channels, 1)
    if scale == 1:
        return shape

    def ch(n):
        return max(n // scale, min(min_channels, n))

    return replace(shape, name=f"{shape.name}/s{scale}", C=ch(shape.C), K=ch(shape.K),
                   H=max(shape.H // scale, shape.R), W=max(shape.W // scale, shape.S))


_SCALED = re.compile(r"^(?P<base>.+)/s(?P<scale>[0-9]+)$")


def get_layer(name, scale=1):
    """Look a layer up by name (a ``/s{N}`` suffix applies :func:`scaled` with ``N``)."""
    if not isinstance(name, str):
        raise TypeError(f"layer name must be a string, not {name!r}")
    m = _SCALED.match(name)
    if m:
        name, scale = m.group("base"), int(m.group("scale")) * scale
    try:
        shape = _BY_NAME[name]
    except KeyError:
        hint = ", ".join(layer_names("cifar")[:4])
        raise ValueError(f"layer name must be a ResNet-18 layer such as {hint}, ... "
                         f"(see cgaccel.model.resnet18.layer_names()), not {name!r}") from None
    return scaled(shape, scale)
