"""Pure-numpy, exact-integer golden model of quantized channel-gated conv layers.

Never imports amaranth. Modules:

* :mod:`.layer`: ``conv2d_int``, ``base_channels``, ``requantize``, ``gated_conv`` (the layer
  semantics every RTL result is checked against) and ``fold_bn_threshold``;
* :mod:`.stats`: MAC counts (dense, executed, reduction);
* :mod:`.traffic`: DRAM bytes per layer for a tiling;
* :mod:`.resnet18`: every ResNet-18 conv shape (ImageNet and CIFAR-10 geometry);
* :mod:`.data`: synthetic layer data with CGNet-like gate statistics;
* :mod:`.vectors`: the ``.npz`` test-vector format and the ``cgaccel vectors`` command.
"""

from .layer import (
    LayerResult,
    base_channels,
    conv2d_int,
    fold_bn_threshold,
    gated_conv,
    output_size,
    requantize,
)
from .stats import MacStats, mac_stats

__all__ = [
    "LayerResult",
    "MacStats",
    "base_channels",
    "conv2d_int",
    "fold_bn_threshold",
    "gated_conv",
    "mac_stats",
    "output_size",
    "requantize",
]
