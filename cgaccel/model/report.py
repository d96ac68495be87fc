"""Whole-network figures from the golden model: MACs, theoretical reduction, DRAM bytes.

``python -m cgaccel.model.report --geometry cifar --groups 4 --density 0.3`` runs every
ResNet-18 conv of a geometry through :func:`cgaccel.model.data.make_layer` and
:func:`cgaccel.model.layer.gated_conv` and prints one row per layer plus totals. Layers whose
channel counts ``groups`` does not divide (conv1, 3 input channels) run dense, as CGNet leaves
the first layer ungated.
"""

import argparse
import sys
import time
from dataclasses import dataclass

from .data import make_layer
from .layer import gated_conv
from .resnet18 import GEOMETRIES, layers, scaled
from .traffic import ORDERS, layer_traffic

__all__ = ["LayerReport", "main", "network_report"]


@dataclass(frozen=True)
class LayerReport:
    """One layer's figures (MACs from the gate maps, bytes from :mod:`.traffic`)."""

    name: str
    groups: int
    dense_macs: int
    executed_macs: int
    open_fraction: float
    bytes_read: int
    bytes_written: int
    seconds: float

    @property
    def reduction(self):
        return self.dense_macs / self.executed_macs if self.executed_macs else float("inf")


def network_report(geometry, groups=4, density=0.3, seed=0, *, scale=1, k_tile=8, row_tile=4,
                   order="rows_outer", fbs_density=None):
    """Evaluate every conv layer of ResNet-18 in ``geometry``; return a list of LayerReport.

    Residual inputs are generated for the second conv of each block (where ResNet adds the
    shortcut), ReLU for every layer except the downsample convs.
    """
    out = []
    for i, base in enumerate(layers(geometry)):
        shape = scaled(base, scale)
        g = groups if shape.C % groups == 0 and shape.K % groups == 0 else 1
        residual = shape.name.split("/")[0].endswith("conv2")
        relu = not base.name.endswith("downsample")
        t0 = time.perf_counter()
        d = make_layer(shape, g, density, seed + i, fbs_density, residual, relu)
        r = gated_conv(**d)
        dt = time.perf_counter() - t0
        traffic = layer_traffic(shape, k_tile, row_tile, order=order, residual=residual,
                                omask=d.get("omask"), imask=d.get("imask"))
        on = d["omask"].astype(bool) if "omask" in d else slice(None)
        opened = float(r.gate[on].mean())
        out.append(LayerReport(shape.name, g, r.stats.dense, r.stats.executed, opened,
                               traffic.read, traffic.y_write, dt))
    return out


def format_report(rows):
    lines = [f"{'layer':32s} {'G':>2s} {'dense MACs':>12s} {'executed':>12s} {'red.':>6s} "
             f"{'open':>5s} {'read B':>10s} {'write B':>9s} {'model s':>8s}"]
    for r in rows:
        lines.append(f"{r.name:32s} {r.groups:2d} {r.dense_macs:12d} {r.executed_macs:12d} "
                     f"{r.reduction:6.2f} {r.open_fraction:5.2f} {r.bytes_read:10d} "
                     f"{r.bytes_written:9d} {r.seconds:8.3f}")
    dense = sum(r.dense_macs for r in rows)
    done = sum(r.executed_macs for r in rows)
    lines.append(f"{'total':32s} {'':2s} {dense:12d} {done:12d} {dense / done:6.2f} {'':5s} "
                 f"{sum(r.bytes_read for r in rows):10d} "
                 f"{sum(r.bytes_written for r in rows):9d} {sum(r.seconds for r in rows):8.3f}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m cgaccel.model.report", description=__doc__)
    p.add_argument("--geometry", choices=GEOMETRIES, default="cifar")
    p.add_argument("--groups", type=int, default=4)
    p.add_argument("--density", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=int, default=1)
    p.add_argument("--fbs-density", type=float, default=None)
    p.add_argument("--k-tile", type=int, default=8)
    p.add_argument("--row-tile", type=int, default=4)
    p.add_argument("--order", choices=ORDERS, default="rows_outer")
    a = p.parse_args(argv)
    try:
        rows = network_report(a.geometry, a.groups, a.density, a.seed, scale=a.scale,
                              k_tile=a.k_tile, row_tile=a.row_tile, order=a.order,
                              fbs_density=a.fbs_density)
    except (TypeError, ValueError) as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    print(format_report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
