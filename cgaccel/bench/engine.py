"""Benchmark: does the engine turn skipped MACs into saved cycles?

For each scaled ResNet-18 layer, run the dense version (G=1) and the gated version (G=4 by
default) of the same layer on the same RTL in the Amaranth simulator, check both outputs
bit-exact against the golden model, and print:

* dense and gated compute cycles (``cnt_busy``: cycles a tile was computing);
* the theoretical executed-MAC reduction of the gated layer (golden-model ``MacStats``);
* the measured speedup (dense cycles / gated cycles) and its ratio to the reduction
  (efficiency, target >= 0.95);
* PE utilization of the dense run: golden dense MACs / (cycles * rows * cols) (target >= 0.90),
  and the same with padding taps excluded (the engine never issues padding taps).

Usage::

    python -m cgaccel.bench.engine [--scale 4] [--geometry imagenet] [--groups 4]
        [--density 0.3] [--layers NAME ...] [--split auto|channel|pixel|deal]
        [--preset default] [--set rows=4 ...]
"""

import argparse
import sys
import time

from ..config import parse_overrides, preset
from ..engine.sim import run_plans
from ..engine.tiling import SPLITS, plan_layer
from ..model.data import make_layer
from ..model.layer import gated_conv
from ..model.resnet18 import LayerShape, layers, scaled
from .network import executed_macs

DEFAULT_LAYERS = (
    "layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1", "layer2.0.conv2",
    "layer2.0.downsample", "layer3.0.conv2", "layer4.0.conv2",
)


def useful_macs(args, ref):
    """Non-padding MACs the layer executes (:func:`cgaccel.bench.network.executed_macs`)."""
    return executed_macs(args, ref.gate)


def run_layer(runner, cfg, shape, groups, density, seed, double_out, split="channel"):
    args = make_layer(shape, groups, density, seed=seed, relu=True)
    ref = gated_conv(**args)
    plan = plan_layer(cfg, **args, double_out=double_out, split=split)
    res = runner([plan])
    if any(res.errors):
        raise RuntimeError(f"{shape.name}: engine reported an error")
    if not (res.ys[0] == ref.y).all():
        raise RuntimeError(f"{shape.name} G={groups}: RTL output differs from the golden model")
    return args, ref, plan, res


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m cgaccel.bench.engine", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--set", nargs="*", default=[], help="config overrides key=value")
    ap.add_argument("--geometry", default="imagenet")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--groups", type=int, default=4)
    ap.add_argument("--density", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--custom", nargs="*", default=[], metavar="C,H,W,K,R,STRIDE,PAD",
                    help="extra unscaled layers, e.g. 20,10,10,13,3,1,1 (irregular sizes)")
    ap.add_argument("--single-out", action="store_true",
                    help="single-buffered output bank: every tile runs alone (obuf = 0)")
    ap.add_argument("--split", choices=SPLITS, default="auto",
                    help="how tiles deal work to columns (plan_layer's split)")
    ap.add_argument("--backend", choices=("verilator", "amaranth"), default="verilator",
                    help="simulator (verilator: cocotb + Verilator; amaranth: Python sim)")
    ap.add_argument("--layers", nargs="*", default=None,
                    help="layer names without the geometry prefix, or 'all'")
    a = ap.parse_args(argv)
    cfg = preset(a.preset).with_overrides(**parse_overrides(a.set))
    shapes = {s.name.split(".", 1)[1]: s for s in layers(a.geometry)}
    names = DEFAULT_LAYERS if a.layers is None else (
        list(shapes) if a.layers == ["all"] else a.layers)
    todo = [scaled(shapes[n], a.scale) for n in names]
    for spec in a.custom:
        C, H, W, K, R, st, pad = (int(v) for v in spec.split(","))
        todo.append(LayerShape(f"custom{len(todo)}", C, H, W, K, R, R, st, pad))
    pes = cfg.rows * cfg.cols
    if a.backend == "verilator":
        from ..engine.vlsim import VerilatorEngine
        ve = VerilatorEngine(cfg)
        ve.build()
        runner = ve.run
    else:
        def runner(plans):
            return run_plans(cfg, plans)
    print(f"engine benchmark: {a.geometry} ResNet-18 /s{a.scale}, rows={cfg.rows} "
          f"cols={cfg.cols} psum_slots={cfg.psum_slots}, gated G={a.groups} "
          f"density={a.density}, output bank {'single' if a.single_out else 'double'}-buffered, "
          f"split {a.split}, simulator: {a.backend}")
    hdr = (f"{'layer':<22}{'CxHxW->K RxS/s':>20}{'dense cyc':>10}{'gated cyc':>10}"
           f"{'MAC red':>8}{'speedup':>8}{'effic':>7}{'np red':>7}{'np eff':>7}{'util':>6}"
           f"{'util_np':>8}{'lanes':>6}{'d_idle':>7}{'imbal':>6}{'d total':>8}{'g total':>8}"
           f"{'sim s':>6}")
    print(hdr)
    effs, utils, rows_out = [], [], []
    for shape in todo:
        name = shape.name.split(".", 1)[-1]
        geo = f"{shape.C}x{shape.H}x{shape.W}->{shape.K} {shape.R}x{shape.S}/{shape.stride}"
        t0 = time.time()
        d_args, d_ref, _, d_res = run_layer(runner, cfg, shape, 1, 0.0, a.seed, not a.single_out,
                                             a.split)
        dc = d_res.counters["busy"]
        util = d_ref.stats.dense / (dc * pes)
        d_np = useful_macs(d_args, d_ref)
        util_np = d_np / (dc * pes)
        lanes = d_np / d_res.counters["macs"]
        d_idle = d_res.counters["col_idle"] / (dc * cfg.cols)
        if shape.C % a.groups or shape.K % a.groups:
            print(f"{name:<22}{geo:>20}{dc:>10}{'-':>10}{'(G does not divide C, K)':>36}"
                  f"{util:>6.2f}{util_np:>8.2f}{lanes:>6.2f}{d_idle:>7.3f}{'-':>6}"
                  f"{d_res.cycles:>8}{'-':>8}{time.time() - t0:>6.0f}")
            sys.stdout.flush()
            continue
        g_args, g_ref, _, g_res = run_layer(runner, cfg, shape, a.groups, a.density, a.seed,
                                            not a.single_out, a.split)
        dt = time.time() - t0
        gc = g_res.counters["busy"]
        red = g_ref.stats.reduction
        speed = dc / gc
        eff = speed / red
        np_red = d_np / useful_macs(g_args, g_ref)
        imbal = g_res.counters["col_idle"] / (gc * cfg.cols)
        effs.append(eff)
        utils.append(util)
        rows_out.append((name, geo, dc, gc, red, speed, eff, np_red, speed / np_red, util,
                         util_np, imbal))
        print(f"{name:<22}{geo:>20}{dc:>10}{gc:>10}{red:>8.3f}{speed:>8.3f}{eff:>7.3f}"
              f"{np_red:>7.3f}{speed / np_red:>7.3f}{util:>6.2f}{util_np:>8.2f}{lanes:>6.2f}"
              f"{d_idle:>7.3f}{imbal:>6.3f}{d_res.cycles:>8}{g_res.cycles:>8}{dt:>6.0f}")
        sys.stdout.flush()
    if effs:
        tot_d = sum(r[2] for r in rows_out)
        tot_g = sum(r[3] for r in rows_out)
        print(f"mean efficiency {sum(effs) / len(effs):.3f}, mean np efficiency "
              f"{sum(r[8] for r in rows_out) / len(rows_out):.3f}, mean dense utilization "
              f"{sum(utils) / len(utils):.3f} (no padding "
              f"{sum(r[10] for r in rows_out) / len(rows_out):.3f}), total cycles dense "
              f"{tot_d} gated {tot_g} (speedup {tot_d / tot_g:.3f})")
    print("MAC red: golden dense/executed MACs of the gated layer (padding taps included); "
          "speedup: dense/gated cycles;\neffic: speedup/MAC red; np red, np eff: the same with "
          "padding taps excluded (the engine never issues them);\nutil: golden dense MACs/"
          "(dense cycles*PEs); util_np: non-padding MACs/(dense cycles*PEs);\nlanes: non-padding "
          "MACs / issued MAC lanes (dense run: partial-word waste); d_idle, imbal: fraction of\n"
          "column-cycles of the dense / gated run spent waiting for other columns at tile "
          "ends (K remainder, gate imbalance);\nd/g total: all simulated cycles of the run, "
          "buffer loading (one write per cycle) and write-back included")
    return 0


if __name__ == "__main__":
    sys.exit(main())
