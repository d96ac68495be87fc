"""Per-layer benchmark of ResNet-18 on one configuration: RTL cycles, model, SCALE-Sim, DRAM.

For every requested conv layer, :func:`bench_layer` builds a dense version (G=1) and a gated
version (CGNet, ``groups`` channel groups, ``density`` of the gates open) of the same layer with
:func:`cgaccel.model.data.make_layer`, compiles both with the host driver
(:func:`cgaccel.driver.compile_layer`: tiling, DRAM image and command list), predicts their
cycles with :mod:`cgaccel.bench.cycle_model` and, when asked and within the cycle budget, runs
both on the RTL (end to end through :class:`E2eRunner`, or the engine alone through
:class:`RtlRunner`), checks the outputs bit-exact against the golden model and records the
measured cycles.

Record keys (:data:`RECORD_KEYS`, then extras):

``layer``
    Layer name (``/s<scale>`` when scaled).
``dense_cycles``, ``gated_cycles``
    Compute cycles (engine ``cnt_busy``: cycles a tile computes) of the dense and gated layer,
    measured on the RTL when ``source == "rtl"``, else the model's prediction.
``mac_reduction``
    Executed MACs of the dense layer / executed MACs of the gated layer, from the golden
    model's gate map, taps on zero padding excluded (:func:`executed_macs`: no engine
    executes them). The golden :class:`~cgaccel.model.stats.MacStats` reduction, which counts
    padding taps, is the extra ``golden_mac_reduction`` (and ``golden_efficiency``); they
    differ on small maps where gates open mostly on interior pixels (layer4: 1.86 vs 2.11).
``speedup``, ``efficiency``
    ``dense_cycles / gated_cycles`` and ``speedup / mac_reduction``.
``utilization``
    Non-padding MACs of the dense layer / (``dense_cycles * rows * cols``): the fraction of the
    array's MAC slots that did useful work (the engine never issues padding taps).
``dram_bytes_dense``, ``dram_bytes_gated``
    Bytes the driver's command list moves: LOAD reads, STORE writes and the command list.
``scalesim_dense_cycles``
    SCALE-Sim ``ws`` cycles of the dense layer on a ``rows x cols`` array (None when SCALE-Sim is
    not importable or was not asked for).
``model_error_pct``
    The model's worst signed error in percent over the measured figures it predicts: dense and
    gated compute cycles, and their total cycles (end to end: ``CYCLES`` against
    :mod:`cgaccel.bench.e2e_model`; engine-only: the testbench's cycles against
    :mod:`cgaccel.bench.cycle_model`). None when nothing was measured.
``source``
    ``"rtl"`` (both versions measured: end to end or engine-only, see ``rtl_path``) or
    ``"model"`` (analytical estimate).

Extras: ``shape``, ``groups``, ``density``, ``dense_total_cycles``/``gated_total_cycles``
(end to end: the ``CYCLES`` counter, start to done; engine-only: testbench cycles including the
load/store traffic that does not overlap compute; model rows: the end-to-end model, or with
``--rtl-path engine`` the engine-only prediction),
``rtl_path`` (``"e2e"``/``"engine"``), ``measured_counters`` (end to end: ``STALL_DRAM``, DRAM
bytes),
``model`` (every predicted figure, ``e2e_cycles`` from the front-end model),
``model_errors_pct``, ``scalesim_ratio``,
``golden_mac_reduction``, ``golden_efficiency``
(``scalesim_dense_cycles / dense_cycles``), ``tiles``, ``rtl_seconds``, ``note``.
"""

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine.tiling import valid_taps
from ..model.data import make_layer
from ..model.layer import gated_conv
from ..model.resnet18 import layers, scaled
from .cycle_model import estimate_plan, model_error_pct
from .e2e_model import estimate_e2e

__all__ = ["RECORD_KEYS", "RtlRunner", "E2eRunner", "bench_layer", "layer_variants",
           "select_layers", "useful_macs", "executed_macs"]

RECORD_KEYS = ("layer", "dense_cycles", "gated_cycles", "mac_reduction", "speedup", "efficiency",
               "utilization", "dram_bytes_dense", "dram_bytes_gated", "scalesim_dense_cycles",
               "model_error_pct", "source")


def useful_macs(shape):
    """MACs of the dense layer on non-padding taps: ``K * C * sum(valid taps)``."""
    taps = valid_taps(shape.H, shape.W, shape.R, shape.S, shape.stride, shape.pad)
    return shape.K * shape.C * int(taps.sum())


def executed_macs(args, gate):
    """MACs a layer must execute: the golden model's, without taps on zero padding.

    ``args`` are :func:`~cgaccel.model.layer.gated_conv`'s keyword arguments, ``gate`` its gate
    map. Dense: every non-padding tap of every channel; gated: the base path everywhere and
    the conditional path where the gate opened. No engine executes padding taps (they add 0);
    the golden :class:`~cgaccel.model.stats.MacStats` counts them.
    """
    if args.get("omask") is not None or args.get("imask") is not None:
        raise ValueError("executed_macs takes layers without FBS masks, not masked ones")
    C, H, W = np.asarray(args["x"]).shape
    K, _, R, S = np.asarray(args["w"]).shape
    taps = valid_taps(H, W, R, S, args["stride"], args["pad"])
    groups = args["groups"]
    if groups == 1:
        return int(taps.sum()) * C * K
    nb = C // groups
    opened = (np.asarray(gate).astype(np.int64) * taps).sum()
    return int(taps.sum()) * nb * K + int(opened) * (C - nb)


def select_layers(geometry, names=None, scale=1):
    """The :class:`LayerShape` list to benchmark.

    Parameters
    ----------
    geometry : "cifar" or "imagenet"
    names : list of str, optional
        Layer names without the geometry prefix (``layer1.0.conv1``); all 20 when None.
    scale : int
        Divide channels and spatial size by this factor (:func:`cgaccel.model.resnet18.scaled`).

    Raises
    ------
    ValueError
        Unknown geometry or layer name.
    """
    shapes = {s.name.split(".", 1)[1]: s for s in layers(geometry)}
    if names is None:
        picked = list(shapes.values())
    else:
        picked = []
        for n in names:
            if n not in shapes:
                raise ValueError(f"layer must be one of {', '.join(shapes)}, not {n!r}")
            picked.append(shapes[n])
    return [scaled(s, scale) for s in picked]


@dataclass
class RtlRunner:
    """Runs plans on the engine RTL, optionally remembering verified measurements.

    Parameters
    ----------
    config : AccelConfig
    simulator : "verilator" or "amaranth"
    build_root : path, optional
        Verilator build cache.
    cache_path : path, optional
        JSON file of earlier measurements. An entry is keyed by the SHA-1 of the engine's
        Verilog for ``config`` and of the layer's inputs, and is only written after the RTL
        output matched the golden model, so a hit is the same measurement repeated.
    """

    config: object
    simulator: str = "verilator"
    build_root: object = None
    cache_path: object = None

    def __post_init__(self):
        if self.simulator not in ("verilator", "amaranth"):
            raise ValueError(f"simulator must be 'verilator' or 'amaranth', "
                             f"not {self.simulator!r}")
        self._vl = None
        self._rtl_hash = None

    path = "engine"

    def measure_all(self, layer, variants, comps, refs, double_out=False):
        """``{variant: (compute cycles, total cycles, cached, extra counters)}``."""
        out = {}
        for name, args in variants.items():
            busy, total, hit = self.measure(f"{layer} {name}", args, comps[name].plan,
                                            refs[name])
            out[name] = (busy, total, hit, {})
        return out

    def rtl_hash(self):
        """SHA-1 of the engine's Verilog for this configuration."""
        if self._rtl_hash is None:
            from amaranth.back import verilog

            from ..engine.engine import Engine
            text = verilog.convert(Engine(self.config), name="engine")
            self._rtl_hash = hashlib.sha1(text.encode()).hexdigest()
        return self._rtl_hash

    def _load(self):
        if self.cache_path is None or not Path(self.cache_path).exists():
            return {}
        return json.loads(Path(self.cache_path).read_text())

    def measure(self, name, args, plan, ref):
        """``(compute cycles, testbench cycles, cached)`` of one layer, checked bit-exact.

        Raises
        ------
        RuntimeError
            The engine reported an error or its output differs from the golden model.
        """
        key = None
        if self.cache_path is not None:
            h = hashlib.sha1(self.rtl_hash().encode())
            for k in sorted(args):
                v = args[k]
                h.update(k.encode())
                h.update(np.ascontiguousarray(v).tobytes() if isinstance(v, np.ndarray)
                         else repr(v).encode())
            h.update(repr([t.cmd for t in plan.tiles]).encode())
            key = h.hexdigest()
            hit = self._load().get(key)
            if hit is not None:
                return hit["busy"], hit["cycles"], True
        res = self.run(plan)
        if any(res.errors):
            raise RuntimeError(f"{name}: the engine reported an error")
        if not np.array_equal(res.ys[0], ref.y):
            raise RuntimeError(f"{name}: RTL output must equal the golden model, not differ")
        if key is not None:
            data = self._load()
            data[key] = {"busy": res.counters["busy"], "cycles": res.cycles}
            path = Path(self.cache_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            tmp.replace(path)
        return res.counters["busy"], res.cycles, False

    @property
    def label(self):
        return "engine RTL, " + ("Verilator" if self.simulator == "verilator"
                                 else "Amaranth simulator")

    def run(self, plan):
        if self.simulator == "amaranth":
            from ..engine.sim import run_plans
            return run_plans(self.config, [plan])
        if self._vl is None:
            from ..engine.vlsim import VerilatorEngine
            self._vl = VerilatorEngine(self.config, build_root=self.build_root)
        return self._vl.run([plan])


def _load_json(path):
    return json.loads(Path(path).read_text()) if path and Path(path).exists() else {}


def _store_json(path, key, value):
    data = _load_json(path)
    data[key] = value
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


@dataclass
class E2eRunner:
    """Runs layers end to end: emitted top, host driver, AXI DRAM model (``sim/e2e``).

    The layer's variants go through :func:`cgaccel.driver_cli.run_e2e` in one cocotb run
    (Verilator); the bench there checks ``y`` bit-exact and the MAC/gate counters. Measured:
    ``BUSY`` (cycles the compute array had work: compute cycles), ``CYCLES`` (start to done,
    DMA and controller included), ``STALL_DRAM`` and the DRAM byte counters.

    Parameters
    ----------
    config : AccelConfig
    build_root : path
        Per-configuration build directories (Verilator build of the top).
    cache_path : path, optional
        Verified measurements keyed by the SHA-1 of the top's Verilog and of the layer data.
    """

    config: object
    build_root: object
    cache_path: object = None
    path = "e2e"
    label = "end-to-end top (DMA + controller + engine), Verilator + cocotb AXI models"

    def __post_init__(self):
        self._hash = None

    def rtl_hash(self):
        if self._hash is None:
            from amaranth.back import verilog

            from ..top import Top
            text = verilog.convert(Top(self.config), name="cgaccel")
            self._hash = hashlib.sha1(text.encode()).hexdigest()
        return self._hash

    def _key(self, args, double_out):
        from ..driver import compile_layer

        h = hashlib.sha1(("e2e" + self.rtl_hash() + repr(bool(double_out))).encode())
        for k in sorted(args):
            v = args[k]
            h.update(k.encode())
            h.update(np.ascontiguousarray(v).tobytes() if isinstance(v, np.ndarray)
                     else repr(v).encode())
        # The host's compilation (tiling, layouts, command list) changes the cycles too.
        h.update(compile_layer(self.config, args, double_out=double_out).cmd_bytes)
        return h.hexdigest()

    def measure_all(self, layer, variants, comps, refs, double_out=False):
        """``{variant: (BUSY, CYCLES, cached, extra counters)}``.

        Raises
        ------
        RuntimeError
            The end-to-end bench failed (output or counter mismatch, error, timeout).
        """
        got = self.measure_batch([(layer, variants, refs)], double_out=double_out)
        return got[0]

    def measure_batch(self, layers, double_out=False):
        """Measure several layers in one cocotb run (one build of the top).

        Parameters
        ----------
        layers : list of (name, {variant: make_layer args}, {variant: golden result})

        Returns
        -------
        list of {variant: (BUSY, CYCLES, cached, extra counters)}, one per layer.

        Raises
        ------
        RuntimeError
            The end-to-end bench failed (output or counter mismatch, error, timeout); the
            measurements of the cases that passed are cached first.
        """
        import tempfile

        from ..driver_cli import run_e2e
        from ..model.vectors import save_vectors
        from ..simulate import CocotbFailure

        results = [dict() for _ in layers]
        todo = {}      # case name -> (layer index, variant, key)
        for li, (_, variants, _) in enumerate(layers):
            for name, args in variants.items():
                key = self._key(args, double_out)
                hit = _load_json(self.cache_path).get(key) if self.cache_path else None
                if hit is not None:
                    results[li][name] = (hit["busy"], hit["cycles"], True, hit["extra"])
                elif key not in {k for _, _, k in todo.values()}:
                    todo[f"l{li}_{name}"] = (li, name, key)
        if not todo:
            return results
        cfg_key = hashlib.sha1(self.config.to_json().encode()).hexdigest()[:12]
        build = Path(self.build_root) / cfg_key
        build.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=build) as work:
            work = Path(work)
            cases = []
            for case, (li, name, _) in todo.items():
                _, variants, refs = layers[li]
                vec = dict(variants[name], gate=refs[name].gate, y=refs[name].y)
                save_vectors(work / f"{case}.npz", vec)
                cases.append(dict(name=case, vectors=str(work / f"{case}.npz"),
                                  double_out=bool(double_out)))
            failed = None
            try:
                run_e2e(self.config, "layers", cases, build / "build",
                        out={"json": str(work / "out.json")})
            except CocotbFailure as exc:
                failed = str(exc)
            out_json = work / "out.json"
            report = json.loads(out_json.read_text()) if out_json.exists() else {}
        names = ", ".join(layers[li][0] for li in sorted({li for li, _, _ in todo.values()}))
        for case, (li, name, key) in todo.items():
            if case not in report:
                continue
            c = report[case]["counters"]
            extra = {"stall_dram": c["stall_dram"],
                     "dram_bytes": c["dram_rd_bytes"] + c["dram_wr_bytes"]}
            if self.cache_path:
                _store_json(self.cache_path, key, {"busy": c["busy"], "cycles": c["cycles"],
                                                   "extra": extra})
            results[li][name] = (c["busy"], c["cycles"], False, extra)
        if failed or report.get("failures"):
            raise RuntimeError(f"end-to-end run of {names} failed: "
                               f"{report.get('failures') or failed}")
        # Identical inputs measured once: fill the duplicates from the cache.
        for li, (_, variants, _) in enumerate(layers):
            for name, args in variants.items():
                if name not in results[li]:
                    hit = _load_json(self.cache_path).get(self._key(args, double_out)) \
                        if self.cache_path else None
                    if hit is None:
                        raise RuntimeError(f"{layers[li][0]} {name}: no end-to-end result")
                    results[li][name] = (hit["busy"], hit["cycles"], False, hit["extra"])
        return results


def _dram_bytes(compiled):
    return compiled.load_bytes + compiled.store_bytes + compiled.cmd_len


def _gated_groups(shape, groups):
    """``groups`` when it divides C and K, else None (the layer is not gated)."""
    return groups if groups > 1 and shape.C % groups == 0 and shape.K % groups == 0 else None


def layer_variants(shape, groups, density, seed):
    """``{"dense": args[, "gated": args]}``: the make_layer inputs of a layer's versions."""
    variants = {"dense": make_layer(shape, 1, 0.0, seed=seed, relu=True)}
    g = _gated_groups(shape, groups)
    if g is not None:
        variants["gated"] = make_layer(shape, g, density, seed=seed, relu=True)
    return variants


def bench_layer(config, shape, *, groups=4, density=0.3, seed=0, rtl=None,
                max_rtl_cycles=2_000_000, scalesim=None, double_out=False):
    """Benchmark one layer; returns a record dict (see the module docstring).

    Parameters
    ----------
    config : AccelConfig
    shape : LayerShape
    groups : int
        CGNet groups of the gated version (a layer whose C or K it does not divide is reported
        dense only, with a note).
    density : float
        Fraction of gates open in the gated version.
    seed : int
    rtl : RtlRunner, optional
        Measure on the RTL; None: model only.
    max_rtl_cycles : int
        Run the RTL only when the model predicts at most this many testbench cycles for the
        dense and gated runs together.
    scalesim : ScaleSimCache, optional
        SCALE-Sim comparison (None: skipped).
    double_out : bool
        Tile with a double-buffered output bank (write-back overlaps the next tile).

    Raises
    ------
    ValueError
        The layer cannot be mapped on this configuration (from the tiler).
    RuntimeError
        The RTL output differs from the golden model or the engine reported an error.
    """
    from ..driver import compile_layer

    notes = []
    g = _gated_groups(shape, groups)
    if g is None and groups > 1:
        notes.append(f"not gated: G={groups} does not divide C={shape.C} and K={shape.K}")
    variants = layer_variants(shape, groups, density, seed)
    refs, comps, ests, e2e_ests = {}, {}, {}, {}
    for name, args in variants.items():
        refs[name] = gated_conv(**args)
        comps[name] = compile_layer(config, args, double_out=double_out)
        ests[name] = estimate_plan(config, comps[name].plan, refs[name].gate)
        e2e_ests[name] = estimate_e2e(config, comps[name], refs[name].gate)

    measured = {}
    predicted_total = sum(e.total_cycles for e in ests.values())
    rtl_seconds = None
    extra = {}
    if rtl is not None and predicted_total <= max_rtl_cycles:
        t0 = time.time()
        got = rtl.measure_all(shape.name, variants, comps, refs, double_out=double_out)
        for name, (busy, total, _, ex) in got.items():
            measured[name] = (busy, total)
            extra[name] = ex
        rtl_seconds = time.time() - t0
        if all(hit for _, _, hit, _ in got.values()):
            notes.append("RTL figures from the measurement cache")
    elif rtl is not None:
        notes.append(f"RTL skipped: model predicts {predicted_total} cycles > "
                     f"--max-rtl-cycles {max_rtl_cycles}")
    source = "rtl" if measured else "model"

    def cycles(name, kind):
        if name not in ests:
            return None
        if name in measured:
            return measured[name][0 if kind == "compute" else 1]
        e = ests[name]
        if kind == "compute":
            return e.compute_cycles
        # Model rows predict what the RTL path measures: start to done through the DMA and
        # the controller (end-to-end model), or the engine testbench's total.
        engine_only = rtl is not None and rtl.path == "engine"
        return e.total_cycles if engine_only else e2e_ests[name].cycles

    dense, gated = cycles("dense", "compute"), cycles("gated", "compute")
    golden_red = red = None
    if "gated" in refs:
        golden_red = refs["gated"].stats.reduction
        red = (executed_macs(variants["dense"], refs["dense"].gate)
               / executed_macs(variants["gated"], refs["gated"].gate))
    speedup = dense / gated if gated else None
    total_speedup = (cycles("dense", "total") / cycles("gated", "total")
                     if "gated" in ests else None)
    efficiency = speedup / red if speedup and red else None
    util = useful_macs(shape) / (dense * config.rows * config.cols)
    errors = {}
    e2e = rtl is not None and rtl.path == "e2e" and bool(measured)
    for name in measured:
        # Totals: end to end the front-end model's CYCLES, else the engine testbench's.
        for kind in ("compute", "total"):
            e = ests[name]
            if kind == "compute":
                # End to end the tiles arrive when the DMA delivers them, which the
                # front-end model follows; the engine-only timeline does not.
                pred = e2e_ests[name].busy if e2e else e.compute_cycles
            else:
                pred = e2e_ests[name].cycles if e2e else e.total_cycles
            errors[f"{name}_{kind}"] = model_error_pct(pred, cycles(name, kind))
    worst = max(errors.values(), key=abs) if errors else None
    ss = None
    if scalesim is not None:
        ss = scalesim.cycles(shape, config)
    rec = {
        "layer": shape.name,
        "dense_cycles": dense,
        "gated_cycles": gated,
        "mac_reduction": red,
        "speedup": speedup,
        "efficiency": efficiency,
        "utilization": util,
        "dram_bytes_dense": _dram_bytes(comps["dense"]),
        "dram_bytes_gated": _dram_bytes(comps["gated"]) if "gated" in comps else None,
        "scalesim_dense_cycles": ss,
        "model_error_pct": worst,
        "source": source,
        "shape": dict(C=shape.C, H=shape.H, W=shape.W, K=shape.K, R=shape.R, S=shape.S,
                      stride=shape.stride, pad=shape.pad),
        "groups": g or 1,
        "density": density if g else None,
        "dense_total_cycles": cycles("dense", "total"),
        "gated_total_cycles": cycles("gated", "total"),
        # Start to done: what a user waits for, loads and write-back included.
        "total_speedup": total_speedup,
        "total_efficiency": total_speedup / red if total_speedup and red else None,
        # The AXI bus's floor under the total: every byte of the command list moved at one
        # full beat per cycle. A gated total near it is bound by DRAM bandwidth, not compute.
        "dram_bound_cycles": {name: -(-_dram_bytes(c) // config.axi_bytes)
                              for name, c in comps.items()},
        "model": {name: {"compute_cycles": e.compute_cycles, "total_cycles": e.total_cycles,
                         "e2e_cycles": e2e_ests[name].cycles}
                  for name, e in ests.items()},
        "model_errors_pct": errors,
        "scalesim_ratio": ss / dense if ss else None,
        "golden_mac_reduction": golden_red,
        "golden_efficiency": speedup / golden_red if speedup and golden_red else None,
        "rtl_path": (rtl.path if measured else None),
        "measured_counters": extra,
        "tiles": len(comps["dense"].plan.tiles),
        "rtl_seconds": rtl_seconds,
        "note": "; ".join(notes),
    }
    for k, v in rec.items():
        if isinstance(v, float) and not math.isfinite(v):
            rec[k] = None
    return rec
