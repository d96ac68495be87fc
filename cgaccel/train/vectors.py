"""``python -m cgaccel.train.vectors NET.npz --out DIR``: golden-model vectors from real images.

Runs the int8 network file on test-split images (golden model, torch-free) and writes, per
image ``i`` and per layer, ``DIR/<layer>.img<i>.npz`` in the :mod:`cgaccel.model.vectors`
format: the layer's real int8 input, weights and tables, the residual, the FBS ``omask`` and
``imask`` of that image, and the expected ``gate`` and ``y``.
"""

import argparse
import os
import sys

from ..netfile import load_network, write_vectors
from .data import quantize_pixels
from .evaluate import load_test_set

__all__ = ["main"]


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m cgaccel.train.vectors",
                                description=__doc__.split("\n")[0])
    p.add_argument("net", help="network file (.net.npz)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--images", type=int, default=1, metavar="N",
                   help="first N test images (default: 1)")
    p.add_argument("--all-layers", action="store_true",
                   help="also the dense layers (default: gated and FBS layers only)")
    p.add_argument("--test-set", help="test split npz (default: the one named in the file)")
    args = p.parse_args(argv)
    net = load_network(args.net)
    path = args.test_set or os.path.join(os.path.dirname(args.net),
                                         net.manifest["metrics"]["test_set"])
    pixels, _ = load_test_set(path)
    if not 1 <= args.images <= len(pixels):
        p.error(f"--images must be between 1 and {len(pixels)}, not {args.images}")
    layers = None if args.all_layers else [
        la["name"] for la in net.layers if la["groups"] > 1 or la["fbs"] is not None]
    n = 0
    for i in range(args.images):
        n += len(write_vectors(net, quantize_pixels(pixels[i])[None], args.out, f"img{i}",
                               layers))
    print(f"wrote {n} vectors files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
