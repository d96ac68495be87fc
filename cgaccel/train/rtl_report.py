"""``python -m cgaccel.train.rtl_report``: the shipped trained network's gated layers on the RTL.

For each gated conv layer (``groups > 1``) of the network and each of the first ``N`` test
images, the layer's real golden-model vectors (:func:`cgaccel.netfile.layer_vectors`) and a
dense variant of the same layer (same input, weights, tables and residual, ``groups=1``,
expected ``y`` from :func:`cgaccel.model.layer.gated_conv` with ``groups=1``) all run on the
emitted top (:class:`cgaccel.top.Top`: DMA, controller, engine) in one cocotb + Verilator
build (:func:`cgaccel.driver_cli.run_e2e`). Every ``y`` is checked bit for bit against the
golden model; any mismatch or bench failure raises :class:`RtlMismatch`.

Reported per layer and image: gate density (fraction of open gates), theoretical MAC reduction
(golden-model :class:`~cgaccel.model.stats.MacStats`), dense and gated cycles (``CYCLES``:
start to done; ``BUSY``: cycles the array computes), speedup (dense / gated) and efficiency
(speedup / MAC reduction), for both counters.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..config import PRESETS, preset
from ..model.layer import gated_conv
from ..model.vectors import save_vectors
from ..netfile import layer_vectors, load_network
from .data import quantize_pixels
from .evaluate import load_test_set

__all__ = ["RtlMismatch", "build_cases", "run_report", "format_table", "main"]

DEFAULT_NET = Path(__file__).resolve().parents[2] / "models" / "cgnet_digits.net.npz"


class RtlMismatch(RuntimeError):
    """The RTL's output differs from the golden model's, or the bench failed."""


def _dense_variant(vec):
    """Vectors of the same layer with ``groups=1`` and the golden model's dense result."""
    d = dict(vec)
    d["groups"] = np.int32(1)
    d["thr"] = np.zeros(vec["w"].shape[0], dtype=np.int32)
    kw = {k: d[k] for k in ("x", "w", "bias", "mult", "shift")}
    for k in ("res", "omask", "imask"):
        if k in d:
            kw[k] = d[k]
    r = gated_conv(**kw, thr=None, stride=int(d["stride"]), pad=int(d["pad"]), groups=1,
                   relu=bool(d["relu"]))
    d["gate"], d["y"] = r.gate, r.y
    return d, r.stats


def _gated_stats(vec):
    kw = {k: vec[k] for k in ("x", "w", "bias", "thr", "mult", "shift")}
    for k in ("res", "omask", "imask"):
        if k in vec:
            kw[k] = vec[k]
    r = gated_conv(**kw, stride=int(vec["stride"]), pad=int(vec["pad"]),
                   groups=int(vec["groups"]), relu=bool(vec["relu"]))
    # The vectors came from the same golden model: they must agree with it here.
    np.testing.assert_array_equal(r.y, vec["y"])
    np.testing.assert_array_equal(r.gate, vec["gate"])
    return r.stats


def build_cases(net, images, workdir, test_set):
    """Write the dense and gated vectors of every gated layer for ``images`` test images.

    Parameters
    ----------
    net : Network
    images : int
        First ``images`` images of the test split named in the network's metrics.
    workdir : path
    test_set : path
        Test-split npz (:func:`cgaccel.train.evaluate.load_test_set`).

    Returns
    -------
    list of dict
        One per (layer, image): ``layer``, ``image``, ``density``, ``mac_reduction``,
        ``dense``/``gated`` (case dicts for :func:`cgaccel.driver_cli.run_e2e`, with the
        expected ``y`` under ``want``).

    Raises
    ------
    ValueError
        ``images`` out of range, or the network has no gated layer.
    """
    pixels, _ = load_test_set(test_set)
    if not isinstance(images, int) or not 1 <= images <= len(pixels):
        raise ValueError(f"images must be an integer between 1 and {len(pixels)}, not {images!r}")
    gated = [la["name"] for la in net.layers if la["groups"] > 1]
    if not gated:
        raise ValueError("network must have at least one gated layer (groups > 1), not none")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(images):
        vecs = layer_vectors(net, quantize_pixels(pixels[i])[None], gated)
        for name in gated:
            vec = vecs[name]
            stats = _gated_stats(vec)
            dense, _ = _dense_variant(vec)
            row = {"layer": name, "image": i, "density": float(vec["gate"].mean()),
                   "mac_reduction": stats.reduction}
            for kind, v in (("gated", vec), ("dense", dense)):
                case = f"{name.replace('.', '_')}_img{i}_{kind}"
                f = workdir / f"{case}.npz"
                save_vectors(f, v)
                row[kind] = {"name": case, "vectors": str(f), "want": v["y"]}
            rows.append(row)
    return rows


def run_report(net_path, images=1, config="small", build_dir=None, sim="verilator"):
    """Run every gated layer (dense and gated) on the RTL; return the measured rows.

    Raises
    ------
    RtlMismatch
        Any ``y`` differs from the golden model, or the bench reported a failure.
    """
    from ..driver_cli import mismatch_summary, run_e2e
    from ..simulate import CocotbFailure

    net = load_network(net_path)
    test_set = os.path.join(os.path.dirname(str(net_path)), net.manifest["metrics"]["test_set"])
    cfg = preset(config)
    build = Path(build_dir or Path("build") / "train_rtl" / f"{config}-{sim}")
    build.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=build) as work:
        work = Path(work)
        rows = build_cases(net, images, work, test_set)
        cases = [dict(name=r[k]["name"], vectors=r[k]["vectors"])
                 for r in rows for k in ("dense", "gated")]
        out = {"npz": str(work / "y.npz"), "json": str(work / "out.json")}
        failure = None
        t0 = time.monotonic()
        try:
            run_e2e(cfg, "layers", cases, build / "build", sim=sim, out=out)
        except CocotbFailure as exc:
            failure = str(exc)
        seconds = time.monotonic() - t0
        report = json.loads(Path(out["json"]).read_text()) if Path(out["json"]).exists() \
            else {}
        ys = {}
        if Path(out["npz"]).exists():
            with np.load(out["npz"]) as f:
                ys = {k: f[k] for k in f.files}
    problems = list(report.get("failures", []))
    for r in rows:
        for kind in ("dense", "gated"):
            c = r[kind]
            y = ys.get(f"{c['name']}.y")
            if y is None:
                problems.append(f"{c['name']}: no output from the RTL")
                continue
            s = mismatch_summary(y, c["want"])
            if s:
                problems.append(f"{c['name']}: {s}")
            c["y"] = y
    if failure or problems:
        raise RtlMismatch(f"RTL run of {len(cases)} cases on {config} failed: "
                          f"{'; '.join(problems) or failure}")
    measured = []
    for r in rows:
        for kind in ("dense", "gated"):
            np.testing.assert_array_equal(r[kind]["y"], r[kind]["want"])
        cd = report[r["dense"]["name"]]["counters"]
        cg = report[r["gated"]["name"]]["counters"]
        m = {"layer": r["layer"], "image": r["image"], "density": r["density"],
             "mac_reduction": r["mac_reduction"],
             "dense_cycles": cd["cycles"], "gated_cycles": cg["cycles"],
             "dense_busy": cd["busy"], "gated_busy": cg["busy"],
             "macs_skipped": cg["macs_skipped"], "bit_exact": True}
        m["speedup"] = m["dense_cycles"] / m["gated_cycles"]
        m["efficiency"] = m["speedup"] / m["mac_reduction"]
        m["busy_speedup"] = m["dense_busy"] / m["gated_busy"]
        m["busy_efficiency"] = m["busy_speedup"] / m["mac_reduction"]
        measured.append(m)
    return {"net": str(net_path), "config": config, "sim": sim, "images": images,
            "cases": len(cases), "rtl_seconds": round(seconds, 1), "rows": measured}


def format_table(result):
    """Markdown table of :func:`run_report`'s rows."""
    head = ("| layer | img | gate density | MAC reduction | dense cycles | gated cycles | "
            "speedup | efficiency | dense busy | gated busy | busy speedup | busy eff. |")
    lines = [head, "|" + "---|" * 12]
    for m in result["rows"]:
        lines.append(f"| {m['layer']} | {m['image']} | {m['density']:.3f} | "
                     f"{m['mac_reduction']:.2f}x | {m['dense_cycles']} | {m['gated_cycles']} | "
                     f"{m['speedup']:.2f}x | {m['efficiency']:.2f} | {m['dense_busy']} | "
                     f"{m['gated_busy']} | {m['busy_speedup']:.2f}x | "
                     f"{m['busy_efficiency']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m cgaccel.train.rtl_report",
                                description=__doc__.split("\n")[0])
    p.add_argument("--net", default=str(DEFAULT_NET), help="network file (default: %(default)s)")
    p.add_argument("--images", type=int, default=1, metavar="N",
                   help="first N test images (default: 1)")
    p.add_argument("--config", default="small", choices=sorted(PRESETS),
                   help="accelerator preset (default: %(default)s)")
    p.add_argument("--sim", default="verilator", choices=("verilator", "icarus"),
                   help="simulator (default: %(default)s)")
    p.add_argument("--build-dir", metavar="DIR",
                   help="build directory (default: build/train_rtl/<config>-<sim>)")
    p.add_argument("--json", metavar="FILE", help="write the measured rows here")
    args = p.parse_args(argv)
    try:
        result = run_report(args.net, args.images, args.config, args.build_dir, args.sim)
    except RtlMismatch as exc:
        print(f"rtl_report: MISMATCH: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"rtl_report: {exc}", file=sys.stderr)
        return 2
    print(f"{result['net']}: {result['cases']} cases on '{result['config']}' "
          f"({result['sim']}, one build, {result['rtl_seconds']} s); every y bit-exact")
    print(format_table(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
