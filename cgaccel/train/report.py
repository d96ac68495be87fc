"""``python -m cgaccel.train.report NET.npz``: re-score a network file with the golden model.

Prints the per-layer table (gate density, FBS kept fraction, MACs, theoretical reduction) and
the accuracy, measured now on the test split beside the network file, and fails (exit 1) if the
int8 accuracy differs from the one stored in the file. Torch-free.
"""

import argparse
import os
import sys

from ..netfile import load_network
from .evaluate import evaluate_network, load_test_set

__all__ = ["format_report", "main"]


def _f(v, fmt):
    return "-" if v is None else format(v, fmt)


def format_report(m):
    """Markdown table of the figures in a metrics dict (see ``evaluate_network``)."""
    lines = ["| layer | gate density | FBS kept | MACs dense / image | MACs executed / image | "
             "reduction |", "|---|---|---|---|---|---|"]
    n = m["n_test"]
    for name, v in m["layers"].items():
        lines.append(f"| {name} | {_f(v['gate_density'], '.3f')} | "
                     f"{_f(v['omask_density'], '.3f')} | {v['macs_dense'] // n} | "
                     f"{v['macs_executed'] / n:.0f} | {v['mac_reduction']:.3f} |")
    lines.append(f"| **all convs** | | | {m['macs_dense'] // n} | {m['macs_executed'] / n:.0f} | "
                 f"**{m['mac_reduction']:.3f}** |")
    lines.append("")
    if "float_correct" in m:
        lines.append(f"float accuracy: {m['float_correct']}/{n} = {m['float_accuracy']:.4f}")
    lines.append(f"int8 accuracy (golden model): {m['int8_correct']}/{n} = "
                 f"{m['int8_accuracy']:.4f}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m cgaccel.train.report",
                                description=__doc__.split("\n")[0])
    p.add_argument("net", help="network file (.net.npz)")
    p.add_argument("--test-set", help="test split npz (default: the one named in the file, "
                                      "beside it)")
    args = p.parse_args(argv)
    net = load_network(args.net)
    stored = net.manifest["metrics"]
    path = args.test_set or os.path.join(os.path.dirname(args.net), stored["test_set"])
    pixels, labels = load_test_set(path)
    m = evaluate_network(net, pixels, labels)
    for k in ("float_correct", "float_accuracy"):
        if k in stored:
            m[k] = stored[k]
    print(format_report(m))
    if m["int8_correct"] != stored["int8_correct"]:
        print(f"MISMATCH: stored int8_correct {stored['int8_correct']}, measured "
              f"{m['int8_correct']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
