"""``python -m cgaccel.train --out models``: train, checkpoint, quantize, score, export.

Writes into ``--out``: ``<name>.ckpt.npz`` (float16 checkpoint), ``<name>.net.npz`` (int8
network file, :mod:`cgaccel.netfile`), ``digits_test.npz`` (the test split) and, with
``--vectors N``, ``vectors/<name>/<layer>.img<i>.npz`` (golden-model vectors of every gated
layer on the first N test images; ``python -m cgaccel.train.vectors`` makes them from the
network file alone). ``--export-only`` skips training and re-exports the checkpoint.
"""

import argparse
import os
import sys
import time

__all__ = ["main"]


def build_parser():
    p = argparse.ArgumentParser(prog="python -m cgaccel.train", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--name", default=None,
                   help="file stem (default: cgnet_digits, or fbs_digits with --fbs)")
    p.add_argument("--groups", type=int, default=4, help="CGNet groups of gated convs (1: none)")
    p.add_argument("--fbs", action="store_true", help="add FBS saliency predictors")
    p.add_argument("--fbs-keep", type=float, default=0.5, help="FBS kept channel fraction")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--target-density", type=float, default=0.2,
                   help="gate density the sparsity loss pulls towards")
    p.add_argument("--gate-weight", type=float, default=2.0, help="weight of the density loss")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--vectors", type=int, default=0, metavar="N",
                   help="export vectors of the gated layers for the first N test images")
    p.add_argument("--export-only", action="store_true",
                   help="load <out>/<name>.ckpt.npz instead of training")
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    from .arch import resnet8_specs

    try:
        resnet8_specs((16, 32, 64), args.groups, args.fbs)
    except ValueError as exc:
        parser.error(str(exc))
    if not 0 < args.fbs_keep <= 1:
        parser.error(f"--fbs-keep must be in (0, 1], not {args.fbs_keep}")
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, not {args.epochs}")
    if not 0 <= args.vectors <= 450:
        parser.error(f"--vectors must be between 0 and 450, not {args.vectors}")
    name = args.name or ("fbs_digits" if args.fbs else "cgnet_digits")
    ckpt = os.path.join(args.out, f"{name}.ckpt.npz")
    if args.export_only and not os.path.exists(ckpt):
        parser.error(f"--export-only needs the checkpoint {ckpt}, not a missing file")
    try:
        import torch  # noqa: F401
    except ImportError:
        print("python -m cgaccel.train: needs torch (pip install torch==2.13.0)", file=sys.stderr)
        return 2
    from ..netfile import write_vectors
    from .data import quantize_pixels
    from .export import export_network
    from .loop import TrainConfig, load_checkpoint, save_checkpoint, train

    os.makedirs(args.out, exist_ok=True)
    if not args.export_only:
        cfg = TrainConfig(groups=args.groups, fbs=args.fbs, fbs_keep=args.fbs_keep,
                          epochs=args.epochs, target_density=args.target_density,
                          gate_weight=args.gate_weight, seed=args.seed, threads=args.threads)
        t0 = time.perf_counter()
        model = train(cfg)
        print(f"trained in {time.perf_counter() - t0:.1f} s")
        save_checkpoint(model, ckpt, {"model_kwargs": cfg.model_kwargs(),
                                      "config": cfg.to_dict()})
    model, meta = load_checkpoint(ckpt)
    net = export_network(model, meta, os.path.join(args.out, f"{name}.net.npz"),
                         os.path.join(args.out, "digits_test.npz"))
    from .data import load_digits_split

    pixels = load_digits_split()["test_pixels"]
    gated = [la["name"] for la in net.layers if la["groups"] > 1 or la["fbs"] is not None]
    for i in range(args.vectors):
        write_vectors(net, quantize_pixels(pixels[i])[None],
                      os.path.join(args.out, "vectors", name), f"img{i}", gated)
    from .report import format_report

    print(format_report(net.manifest["metrics"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
