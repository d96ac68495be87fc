"""``cgaccel bench``: the per-layer performance table of ResNet-18 on one configuration.

For every selected conv layer: dense and gated compute cycles, the gated layer's theoretical
executed-MAC reduction, the measured speedup and its ratio to the reduction (efficiency), PE
utilization, DRAM bytes, SCALE-Sim ``ws`` dense cycles for the same array, the analytical model's
error, and whether the row was measured on the RTL (``rtl``) or estimated (``model``). See
:mod:`cgaccel.bench.network` for the definitions and ``docs/bench.md`` for a run.

"RTL" is the end-to-end top (DMA + command-list controller + engine, run by the host driver
against an AXI DRAM model in cocotb + Verilator) when the top has the controller, else the engine
alone behind its testbench (one buffer write per cycle); ``--rtl-path`` chooses.
"""

import json
import sys
import time
from pathlib import Path

from ..model.resnet18 import GEOMETRIES, scaled
from .network import RECORD_KEYS, E2eRunner, RtlRunner, bench_layer, select_layers

__all__ = ["add_arguments", "run", "format_table", "e2e_status"]

DEFAULT_BUILD = Path("build") / "bench"


def add_arguments(parser):
    """Add the ``bench`` options to ``parser``."""
    parser.add_argument("--geometry", nargs="+", choices=GEOMETRIES, default=["cifar", "imagenet"],
                        help="ResNet-18 geometries (default: both)")
    parser.add_argument("--layers", nargs="+", default=None, metavar="NAME",
                        help="layers without the geometry prefix, e.g. layer1.0.conv1 "
                             "(default: all 20)")
    parser.add_argument("--scale", type=int, default=1,
                        help="divide channels and spatial size by this factor (default: 1)")
    parser.add_argument("--fallback-scale", type=int, default=8,
                        help="a layer that does not map on the configuration at --scale is "
                             "benchmarked at the smallest power-of-two multiple of it that maps, "
                             "up to this factor (said so in its note; 1: never; default: 8)")
    parser.add_argument("--groups", type=int, default=4, help="CGNet groups (default: 4)")
    parser.add_argument("--density", type=float, default=0.3,
                        help="fraction of gates open (default: 0.3)")
    parser.add_argument("--seed", type=int, default=0)
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--double-out", dest="double_out", action="store_true", default=True,
                     help="tile with a double-buffered output bank: columns run ahead into "
                          "the next tile and the write-back of one tile overlaps the next "
                          "(default)")
    out.add_argument("--single-out", dest="double_out", action="store_false",
                     help="every tile uses the whole output bank and runs alone")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--rtl", dest="rtl", action="store_true", default=True,
                      help="measure on the RTL within --max-rtl-cycles (default)")
    mode.add_argument("--model-only", dest="rtl", action="store_false",
                      help="analytical model only, no simulation")
    parser.add_argument("--rtl-path", choices=("auto", "e2e", "engine"), default="auto",
                        help="what runs the layers: the end-to-end top (DMA + controller + "
                             "engine, driver and AXI DRAM model) or the engine alone behind "
                             "its testbench; auto: end to end when the top has the controller "
                             "(default)")
    parser.add_argument("--simulator", choices=("verilator", "amaranth"), default="verilator",
                        help="simulator of the engine-only path (default: verilator)")
    parser.add_argument("--max-rtl-cycles", type=int, default=1_500_000,
                        help="simulate a layer only when the model predicts at most this many "
                             "engine-testbench cycles for its dense and gated runs together (a "
                             "bound on simulation time; default: %(default)s)")
    parser.add_argument("--no-rtl-cache", action="store_true",
                        help="simulate even when the same RTL already measured the same layer "
                             "(the cache is keyed by the engine's Verilog and the layer data)")
    parser.add_argument("--scalesim", dest="scalesim", action="store_true", default=True,
                        help="compare with SCALE-Sim (default when importable)")
    parser.add_argument("--no-scalesim", dest="scalesim", action="store_false")
    parser.add_argument("--max-scalesim-cycles", type=int, default=1_000_000,
                        help="skip SCALE-Sim for layers whose ws cycles are estimated above this "
                             "and not cached (it simulates ~3k cycles/s; default: "
                             "%(default)s)")
    parser.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD,
                        help="Verilator build and SCALE-Sim result cache (default: build/bench)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="write the records as JSON")
    parser.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                        help="write the per-layer speedup vs ideal plot")


def e2e_status():
    """``(True, "")`` when the end-to-end top can run layers, else ``(False, reason)``."""
    try:
        import cgaccel.driver  # noqa: F401
    except ImportError as exc:
        return False, f"cgaccel.driver is missing ({exc})"
    try:
        from amaranth.hdl import Fragment

        from ..config import preset
        from ..top import Top
        frag = Fragment.get(Top(preset("small")), None)
        names = {name for _, name, _ in frag.subfragments}
    except Exception as exc:  # an elaboration failure is a reason, not a crash
        return False, f"cgaccel.top.Top does not elaborate ({type(exc).__name__}: {exc})"
    if "controller" not in names:
        return False, "cgaccel.top.Top has no controller submodule yet"
    return True, ""


def _scalesim_estimate(shape, config):
    """SCALE-Sim ws cycles, roughly: folds * (pixels + array fill)."""
    folds = -(-shape.C * shape.R * shape.S // config.rows) * -(-shape.K // config.cols)
    return folds * (shape.Ho * shape.Wo + config.rows + config.cols)


def _fmt(v, spec):
    if v is None:
        return "-"
    return format(v, spec)


COLUMNS = (
    # header, key, format, width
    ("layer", "layer", "s", 30), ("src", "source", "s", 6),
    ("dense cyc", "dense_cycles", "d", 10), ("gated cyc", "gated_cycles", "d", 10),
    ("MAC red", "mac_reduction", ".3f", 8), ("speedup", "speedup", ".3f", 8),
    ("effic", "efficiency", ".3f", 6), ("tot.sp", "total_speedup", ".3f", 7),
    ("tot.eff", "total_efficiency", ".3f", 8), ("gold red", "golden_mac_reduction", ".3f", 9),
    ("g.eff", "golden_efficiency", ".3f", 6), ("util", "utilization", ".3f", 6),
    ("DRAM B dense", "dram_bytes_dense", "d", 13), ("DRAM B gated", "dram_bytes_gated", "d", 13),
    ("SCALE-Sim ws", "scalesim_dense_cycles", "d", 13), ("ss/ours", "scalesim_ratio", ".2f", 8),
    ("model err%", "model_error_pct", "+.2f", 11),
)


def format_table(records):
    """The records as a fixed-width text table (one line per layer, notes below)."""
    lines = ["".join(f"{h:<{w}}" if k == "layer" else f"{h:>{w}}" for h, k, _, w in COLUMNS)]
    notes = []
    for r in records:
        cells = []
        for _, k, spec, w in COLUMNS:
            v = r.get(k)
            text = _fmt(v, spec)
            cells.append(f"{text:<{w}}" if k == "layer" else f"{text:>{w}}")
        lines.append("".join(cells))
        if r.get("note"):
            notes.append(f"  {r['layer']}: {r['note']}")
    if notes:
        lines.append("notes:")
        lines += notes
    return "\n".join(lines)


def _empty_record(shape, note):
    rec = {k: None for k in RECORD_KEYS}
    rec.update(layer=shape.name, source="none", note=note)
    return rec


def _bench_one(args, config, shape, rtl, cache):
    t0 = time.time()
    ss = cache
    if (cache is not None and not cache.has(shape, config)
            and _scalesim_estimate(shape, config) > args.max_scalesim_cycles):
        ss = None
    rec = bench_layer(config, shape, groups=args.groups, density=args.density, seed=args.seed,
                      rtl=rtl, max_rtl_cycles=args.max_rtl_cycles, scalesim=ss,
                      double_out=args.double_out)
    if cache is not None and ss is None:
        extra = (f"SCALE-Sim skipped: ~{_scalesim_estimate(shape, config)} cycles > "
                 f"--max-scalesim-cycles {args.max_scalesim_cycles}")
        rec["note"] = "; ".join(n for n in (rec["note"], extra) if n)
    rec["seconds"] = round(time.time() - t0, 1)
    return rec


def _prefetch_e2e(args, config, shapes, rtl):
    """Run every layer within the budget in one end-to-end cocotb run (one build of the top).

    The results land in the measurement cache, where the per-layer pass finds them.
    """
    from ..driver import compile_layer
    from ..model.layer import gated_conv
    from .cycle_model import estimate_plan
    from .network import layer_variants

    batch, keys = [], set()
    for full in shapes:
        factor = 1
        while True:
            shape = full if factor == 1 else scaled(full, args.scale * factor)
            key = tuple(getattr(shape, f) for f in ("C", "H", "W", "K", "R", "S", "stride",
                                                     "pad"))
            if key in keys:
                break
            variants = layer_variants(shape, args.groups, args.density, args.seed)
            try:
                refs = {n: gated_conv(**a) for n, a in variants.items()}
                total = 0
                for n, a in variants.items():
                    plan = compile_layer(config, a, double_out=args.double_out).plan
                    total += estimate_plan(config, plan, refs[n].gate).total_cycles
            except ValueError:
                factor *= 2
                if factor > args.fallback_scale:
                    break
                continue
            keys.add(key)
            if total <= args.max_rtl_cycles:
                batch.append((shape.name, variants, refs))
            break
    if batch:
        print(f"  end to end: {len(batch)} layers in one run", file=sys.stderr)
        t0 = time.time()
        rtl.measure_batch(batch, double_out=args.double_out)
        print(f"  end to end: done in {time.time() - t0:.0f} s", file=sys.stderr)


def run(args):
    """Run the benchmark; returns the exit status."""
    config = args.config_obj
    if args.scale < 1:
        print(f"cgaccel bench: --scale must be at least 1, not {args.scale}", file=sys.stderr)
        return 2
    if args.fallback_scale < 1:
        print(f"cgaccel bench: --fallback-scale must be at least 1, not {args.fallback_scale}",
              file=sys.stderr)
        return 2
    if args.groups < 1:
        print(f"cgaccel bench: --groups must be at least 1, not {args.groups}", file=sys.stderr)
        return 2
    if not 0.0 <= args.density <= 1.0:
        print(f"cgaccel bench: --density must be between 0 and 1, not {args.density}",
              file=sys.stderr)
        return 2
    try:
        shapes = [s for g in args.geometry for s in select_layers(g, args.layers, args.scale)]
    except ValueError as exc:
        print(f"cgaccel bench: {exc}", file=sys.stderr)
        return 2

    # Elaborating the top to look for the controller only matters when something is run.
    e2e, why = e2e_status() if args.rtl else (False, "")
    rtl = None
    if args.rtl and args.rtl_path == "e2e" and not e2e:
        print(f"cgaccel bench: --rtl-path e2e needs the end-to-end top: {why}", file=sys.stderr)
        return 2
    if args.rtl and args.rtl_path != "engine" and e2e:
        rtl = E2eRunner(config, build_root=(args.build_dir / "e2e").resolve(),
                        cache_path=None if args.no_rtl_cache
                        else args.build_dir / "rtl_cache.json")
    elif args.rtl:
        # Absolute: the cocotb run behind VerilatorEngine works in another directory.
        rtl = RtlRunner(config, args.simulator,
                        build_root=(args.build_dir / "verilator").resolve(),
                        cache_path=None if args.no_rtl_cache
                        else args.build_dir / "rtl_cache.json")
    cache = None
    ss_note = "SCALE-Sim off (--no-scalesim)"
    if args.scalesim:
        from .scalesim import COMPARE_DATAFLOW, ScaleSimCache, available
        ok, info = available()
        if ok:
            cache = ScaleSimCache(args.build_dir / "scalesim_cache.json")
            ss_note = f"SCALE-Sim {info}, dataflow {COMPARE_DATAFLOW}"
        else:
            ss_note = f"SCALE-Sim column empty: {info}"
    print(f"cgaccel bench: ResNet-18 {'+'.join(args.geometry)}"
          f"{f' /s{args.scale}' if args.scale > 1 else ''}, rows={config.rows} cols={config.cols} "
          f"psum_slots={config.psum_slots}, gated G={args.groups} density={args.density} "
          f"seed={args.seed}, output bank {'double' if args.double_out else 'single'}-buffered")
    print(f"  measured on: {rtl.label if rtl else 'nothing (--model-only)'}"
          f"{'' if e2e or not rtl else f' (end-to-end top not available: {why})'}; "
          f"RTL budget {args.max_rtl_cycles} cycles per layer; {ss_note}")
    sys.stdout.flush()

    t_all = time.time()
    if isinstance(rtl, E2eRunner):
        _prefetch_e2e(args, config, shapes, rtl)
    records = []
    seen = {}
    for full in shapes:
        t0 = time.time()
        rec, shape, notes = None, full, []
        factor = 1
        while True:
            key = tuple(getattr(shape, f) for f in ("C", "H", "W", "K", "R", "S", "stride",
                                                     "pad"))
            if key in seen:
                # Same geometry and seed: make_layer gives the same data, so the same figures.
                rec = dict(seen[key], layer=shape.name, seconds=0.0)
                notes.append(f"same shape and data as {seen[key]['layer']}: figures reused")
                break
            try:
                rec = _bench_one(args, config, shape, rtl, cache)
                seen[key] = dict(rec)
                break
            except ValueError as exc:
                if not notes:
                    notes.append(f"not mappable at this size: {exc}")
                factor *= 2
                if factor > args.fallback_scale:
                    rec = _empty_record(shape, "")
                    break
                shape = scaled(full, args.scale * factor)
        if factor > 1 and rec["source"] != "none":
            notes.append(f"benchmarked scaled by {factor} ({shape.name})")
        rec["note"] = "; ".join(n for n in (*notes, rec.get("note")) if n)
        rec.setdefault("seconds", round(time.time() - t0, 1))
        records.append(rec)
        print(f"  {rec['layer']}: {rec['source']}, {rec['seconds']} s", file=sys.stderr)
        sys.stderr.flush()

    print(format_table(records))
    done = [r for r in records if r.get("efficiency") is not None]
    if done:
        eff = sum(r["efficiency"] for r in done) / len(done)
        print(f"mean efficiency {eff:.3f} over {len(done)} gated layers; "
              f"{sum(r['source'] == 'rtl' for r in records)} of {len(records)} rows "
              f"RTL-measured; {time.time() - t_all:.0f} s")
    print("columns: cycles = compute cycles (engine cnt_busy / BUSY counter); MAC red = "
          "dense / gated executed MACs (golden gate map, padding taps excluded: no engine "
          "executes them); speedup = dense/gated cycles; effic = speedup / MAC red; gold red, "
          "g.eff = the same with the golden MacStats count (padding taps included); "
          "util = non-padding MACs / (dense cycles * rows * cols); "
          "DRAM B = bytes the driver's "
          "command list moves; SCALE-Sim ws = its dense cycles on a rows x cols array; "
          "ss/ours = SCALE-Sim / dense cycles; model err% = worst model error over dense/gated "
          "compute and total cycles (end to end: CYCLES against the front-end model; "
          "engine-only: the testbench's cycles) of rtl rows; src = rtl (measured) or model")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(records, indent=1) + "\n")
    if args.plot is not None:
        from .plot import plot_speedup
        try:
            plot_speedup(records, args.plot, title=f"ResNet-18 {'+'.join(args.geometry)}, "
                         f"{config.rows}x{config.cols}, G={args.groups}, density={args.density}")
        except ValueError as exc:
            print(f"cgaccel bench: no plot: {exc}", file=sys.stderr)
    return 0
