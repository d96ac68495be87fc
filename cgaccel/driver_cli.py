"""``cgaccel run``: run a vectors file on the emitted RTL in cocotb and check ``y`` bit for bit.

The run emits the top (:class:`cgaccel.top.Top`) for ``--config``, builds it with Verilator or
Icarus and runs the end-to-end bench ``sim/e2e/tb_e2e.py``: the host
:class:`~cgaccel.driver.Driver` loads the layer into an ``AxiRam`` DRAM model, programs the
registers over AXI4-Lite, waits for done and reads ``y`` and the counters back. A
``host="mmio"`` configuration (``tiny``) runs the direct-host bench ``sim/direct/tb_direct.py``
instead: :class:`~cgaccel.direct_driver.DirectDriver` hands the engine every transaction over
AXI4-Lite. Exit status 0
only when ``y`` equals the file's expected ``y`` bit for bit; 1 with a mismatch summary; 2 on bad
arguments or a layer the configuration cannot map.
"""

import dataclasses
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

__all__ = ["BENCH_DIR", "add_arguments", "run", "run_e2e", "mismatch_summary"]

BENCH_DIR = Path(__file__).resolve().parents[1] / "sim" / "e2e"
DIRECT_BENCH_DIR = Path(__file__).resolve().parents[1] / "sim" / "direct"


def run_e2e(config, mode, cases, build_dir, *, sim="verilator", out=None, waves=False,
            top=None):
    """Emit the top for ``config`` and run the e2e bench in ``mode`` on ``cases``.

    Parameters
    ----------
    config : AccelConfig
    mode : str
        ``"layers"``, ``"errors"`` or ``"handshake"`` (see ``sim/e2e/tb_e2e.py``).
    cases : list of dict
        ``name``, ``vectors`` (path), optional ``pause``, ``seed``, ``k_tile``, ``band_rows``.
    build_dir : path
        One per design variant and simulator (parallel runs must not share one).
    out : dict, optional
        ``{"npz": path, "json": path}``: where the bench writes ``y`` and counters.
    top : callable, optional
        ``top(config)`` builds the design under test (default :class:`cgaccel.top.Top`); it
        must have Top's ports.

    Raises
    ------
    cgaccel.simulate.CocotbFailure
        The bench failed (its log is in ``build_dir``).
    """
    from .rtl import write_verilog
    from .simulate import CocotbFailure, run_cocotb
    from .top import Top

    if config.host == "mmio":
        return _run_direct(config, mode, cases, build_dir, sim=sim, out=out, waves=waves)
    if not (BENCH_DIR / "tb_e2e.py").exists():
        raise RuntimeError(f"the e2e bench must be at {BENCH_DIR / 'tb_e2e.py'} (a source "
                           f"checkout), not missing")
    build_dir = Path(build_dir)
    src = write_verilog((top or Top)(config), "cgaccel", build_dir / "cgaccel.v")
    params = {"config": dataclasses.asdict(config), "mode": mode,
              "cases": [dict(c, vectors=str(Path(c["vectors"]).resolve())) for c in cases],
              "out": {k: str(Path(v).resolve()) for k, v in out.items()} if out else None}
    try:
        return run_cocotb([src], "cgaccel", "tb_e2e", build_dir, sim=sim, test_dir=BENCH_DIR,
                          extra_env={"E2E_PARAMS": json.dumps(params)}, waves=waves)
    except SystemExit as exc:
        # Under pytest the cocotb runner exits instead of returning when a test failed.
        raise CocotbFailure(f"cocotb bench failed (exit {exc.code}); see "
                            f"{build_dir / 'test.log'}") from None


def _run_direct(config, mode, cases, build_dir, *, sim, out, waves):
    """:func:`run_e2e` for a ``host="mmio"`` configuration: the direct-host bench
    (``sim/direct/tb_direct.py``), layers only."""
    from .direct import DirectTop
    from .rtl import write_verilog
    from .simulate import CocotbFailure, run_cocotb

    if mode != "layers":
        raise ValueError(f"mode must be 'layers' with host='mmio' (the direct bench runs "
                         f"layers), not {mode!r}")
    bench = DIRECT_BENCH_DIR / "tb_direct.py"
    if not bench.exists():
        raise RuntimeError(f"the direct bench must be at {bench} (a source checkout), "
                           f"not missing")
    build_dir = Path(build_dir)
    src = write_verilog(DirectTop(config), "cgaccel", build_dir / "cgaccel.v")
    params = {"config": dataclasses.asdict(config),
              "cases": [dict(c, vectors=str(Path(c["vectors"]).resolve())) for c in cases],
              "out": {k: str(Path(v).resolve()) for k, v in out.items()} if out else None}
    try:
        return run_cocotb([src], "cgaccel", "tb_direct", build_dir, sim=sim,
                          test_dir=DIRECT_BENCH_DIR,
                          extra_env={"DIRECT_PARAMS": json.dumps(params)}, waves=waves)
    except SystemExit as exc:
        raise CocotbFailure(f"cocotb bench failed (exit {exc.code}); see "
                            f"{build_dir / 'test.log'}") from None


def mismatch_summary(y, want, limit=8):
    """One-paragraph description of where ``y`` differs from ``want`` (empty if equal)."""
    if y.shape != want.shape:
        return f"y has shape {y.shape}, expected {want.shape}"
    bad = np.argwhere(y != want)
    if not len(bad):
        return ""
    first = ", ".join(f"y[{','.join(map(str, i))}]={int(y[tuple(i)])} (expected "
                      f"{int(want[tuple(i)])})" for i in bad[:limit])
    return f"{len(bad)} of {y.size} outputs differ; first: {first}"


def add_arguments(parser):
    parser.add_argument("--vectors", required=True, metavar="FILE.npz",
                        help="vectors file (cgaccel vectors)")
    parser.add_argument("--sim", default="verilator", choices=("verilator", "icarus"),
                        help="simulator (default: %(default)s)")
    parser.add_argument("--out", metavar="OUT.npz", help="write y and the counters here")
    parser.add_argument("--json", metavar="REPORT.json", help="write a JSON report here")
    parser.add_argument("--build-dir", metavar="DIR",
                        help="build directory (default: build/run/<vectors>-<config>-<sim>)")
    parser.add_argument("--pause", default="none", choices=("none", "random", "bursty"),
                        help="AXI backpressure pattern on every channel (default: %(default)s)")
    parser.add_argument("--waves", action="store_true", help="dump waveforms")
    parser.add_argument("--axi-trace", metavar="TRACE.json",
                        help="record every AXI master handshake here and compare each "
                             "command's cycles with the end-to-end model")


def _progress(stop, t0):
    """Print elapsed time every few seconds while the simulation runs."""
    while not stop.wait(10):
        print(f"cgaccel run: simulating... {time.monotonic() - t0:.0f} s", file=sys.stderr,
              flush=True)


def run(args):
    from .driver import compile_layer
    from .model.vectors import load_vectors
    from .simulate import CocotbFailure

    config = args.config_obj
    if args.axi_trace and config.host != "dma":
        print(f"cgaccel run: --axi-trace needs host='dma' (the direct-host top has no AXI4 "
              f"master), not {config.host!r}", file=sys.stderr)
        return 2
    try:
        vec = load_vectors(args.vectors)
        compiled = compile_layer(config, vec)
    except (OSError, TypeError, ValueError) as exc:
        print(f"cgaccel run: {exc}", file=sys.stderr)
        return 2
    K, Ho, Wo = compiled.shape
    print(f"cgaccel run: {args.vectors}: K={K} Ho={Ho} Wo={Wo}, {len(compiled.plan.tiles)} "
          f"tiles, {len(compiled.commands)} commands, {args.sim}", file=sys.stderr)
    if args.build_dir:
        build = Path(args.build_dir)
    else:
        build = Path("build") / "run" / f"{Path(args.vectors).stem}-{args.config}-{args.sim}"
    work = build / "results"
    for stale in ("y.npz", "report.json"):
        (work / stale).unlink(missing_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    out = {"npz": str(work / "y.npz"), "json": str(work / "report.json")}
    case = {"name": "layer", "vectors": args.vectors, "pause": args.pause, "seed": 1}
    if args.axi_trace:
        Path(args.axi_trace).parent.mkdir(parents=True, exist_ok=True)
        case["axi_trace"] = str(Path(args.axi_trace).resolve())
    stop = threading.Event()
    t0 = time.monotonic()
    ticker = threading.Thread(target=_progress, args=(stop, t0), daemon=True)
    ticker.start()
    failure = None
    try:
        run_e2e(config, "layers", [case], build, sim=args.sim, out=out, waves=args.waves)
    except CocotbFailure as exc:
        failure = exc
    finally:
        stop.set()
    elapsed = time.monotonic() - t0
    y = None
    if Path(out["npz"]).exists():
        with np.load(out["npz"]) as f:
            y = f["layer.y"] if "layer.y" in f.files else None
    if y is None:
        detail = ""
        if Path(out["json"]).exists():
            detail = "; ".join(json.loads(Path(out["json"]).read_text())["failures"])
        print(f"cgaccel run: the simulation produced no result: {detail or failure} "
              f"(logs in {build})", file=sys.stderr)
        return 1
    report = json.loads(Path(out["json"]).read_text())
    layer = report["layer"]
    summary = mismatch_summary(y, vec["y"])
    result = {"vectors": str(args.vectors), "simulator": args.sim, "config": args.config,
              "match": not summary and failure is None, "mismatch": summary,
              "bench_failures": report["failures"], "wall_seconds": round(elapsed, 1),
              **layer}
    if args.out:
        counters = {f"counter_{k}": np.asarray(v, dtype=np.uint64)
                    for k, v in layer["counters"].items()}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "wb") as f:
            np.savez_compressed(f, y=y, **counters)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    c = layer["counters"]
    dram = (f", DRAM read {c['dram_rd_bytes']} B written {c['dram_wr_bytes']} B"
            if "dram_rd_bytes" in c else "")
    print(f"cgaccel run: {layer['cycles']} cycles, MACs issued {c['macs_issued']} "
          f"skipped {c['macs_skipped']}{dram} ({elapsed:.1f} s)", file=sys.stderr)
    if summary:
        print(f"cgaccel run: MISMATCH: {summary}", file=sys.stderr)
        return 1
    if failure is not None:
        print(f"cgaccel run: y matches but the bench failed: {'; '.join(report['failures'])}"
              f" (logs in {build})", file=sys.stderr)
        return 1
    print(f"cgaccel run: y matches the expected output bit for bit ({y.size} values)",
          file=sys.stderr)
    if args.axi_trace:
        _print_trace_comparison(config, compiled, vec, args.axi_trace, layer["cycles"])
    return 0


def _print_trace_comparison(config, compiled, vec, path, cycles):
    from .bench.axi_trace import compare, load_trace, summarize
    from .bench.e2e_model import estimate_e2e

    est = estimate_e2e(config, compiled, vec["gate"] if compiled.plan.gated else None,
                       timeline=True)
    print(f"cgaccel run: end-to-end model {est.cycles} cycles, RTL {cycles} "
          f"({100 * (est.cycles - cycles) / cycles:+.2f}%); AXI trace in {path}",
          file=sys.stderr)
    for line in summarize(compare(compiled, load_trace(path), est)):
        print(f"cgaccel run:   {line}", file=sys.stderr)
