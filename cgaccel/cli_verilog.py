"""``cgaccel verilog`` and ``cgaccel lint``."""

import re
import subprocess
import sys
from pathlib import Path

from .rtl import write_verilog
from .simulate import tool_path

__all__ = ["LINT_WAIVERS", "lint_verilog"]

# Warnings that Amaranth's Verilog backend (yosys write_verilog) produces for every design: style
# (per-signal case statements, initial values on regs, unused bits of wide ports, module/file
# names) and WIDTH* from its operand-extension idiom (`a == b[127:96]` with `a` one bit wider,
# `!x` for a multi-bit `x == 0`). Widths are defined by Amaranth's semantics before emission, so
# these say nothing about the design. Every other warning (latches, multiple drivers,
# combinational loops, blocking/non-blocking mixes, ...) fails the lint.
LINT_WAIVERS = ("DECLFILENAME", "PROCASSINIT", "UNUSEDSIGNAL", "CASEINCOMPLETE", "WIDTHEXPAND",
                "WIDTHTRUNC")


def add_verilog_arguments(parser):
    parser.add_argument("--out", default="build/verilog/cgaccel.v", help="output file")
    parser.add_argument("--name", default="cgaccel", help="top module name")


def run_verilog(args):
    from .top import build_top
    path = write_verilog(build_top(args.config_obj), args.name, args.out)
    print(f"wrote {path}")
    return 0


def add_lint_arguments(parser):
    parser.add_argument("verilog", nargs="?", default="build/verilog/cgaccel.v")


def lint_verilog(path):
    """Run ``verilator --lint-only -Wall`` with :data:`LINT_WAIVERS`; return (rc, output)."""
    cmd = ["verilator", "--lint-only", "-Wall"] + [f"-Wno-{w}" for w in LINT_WAIVERS] + [str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={"PATH": tool_path()})
    return proc.returncode, proc.stdout + proc.stderr


def waived_counts(path):
    """How many of each waived warning the full ``-Wall`` run reports (for the record)."""
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", str(path)], capture_output=True,
                          text=True, env={"PATH": tool_path()})
    found = re.findall(r"%Warning-([A-Z]+)", proc.stdout + proc.stderr)
    return {w: found.count(w) for w in LINT_WAIVERS if found.count(w)}


def run_lint(args):
    if not Path(args.verilog).exists():
        print(f"cgaccel lint: {args.verilog} does not exist (run `make verilog`)", file=sys.stderr)
        return 2
    rc, out = lint_verilog(args.verilog)
    print(out, end="")
    waived = ", ".join(f"{n} {w}" for w, n in waived_counts(args.verilog).items())
    print(f"waived Amaranth-backend warnings: {waived or 'none'}")
    print(f"verilator lint {'clean' if rc == 0 else 'FAILED'}: {args.verilog}")
    return rc
