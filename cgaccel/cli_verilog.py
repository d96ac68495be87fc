"""``cgaccel verilog`` and ``cgaccel lint``."""

import subprocess
import sys
from pathlib import Path

from .rtl import write_verilog
from .simulate import tool_path

__all__ = ["LINT_WAIVERS", "lint_verilog"]

# Style warnings that Amaranth's Verilog backend produces for every design (per-signal case
# statements, initial values on regs, unused bits of wide ports, module/file names). All other
# -Wall warnings (width, latch, multi-driven, ...) stay errors.
LINT_WAIVERS = ("DECLFILENAME", "PROCASSINIT", "UNUSEDSIGNAL", "CASEINCOMPLETE")


def add_verilog_arguments(parser):
    parser.add_argument("--out", default="build/verilog/cgaccel.v", help="output file")
    parser.add_argument("--name", default="cgaccel", help="top module name")


def run_verilog(args):
    from .top import Top
    path = write_verilog(Top(args.config_obj), args.name, args.out)
    print(f"wrote {path}")
    return 0


def add_lint_arguments(parser):
    parser.add_argument("verilog", nargs="?", default="build/verilog/cgaccel.v")


def lint_verilog(path):
    """Run ``verilator --lint-only -Wall`` with :data:`LINT_WAIVERS`; return (rc, output)."""
    cmd = ["verilator", "--lint-only", "-Wall"] + [f"-Wno-{w}" for w in LINT_WAIVERS] + [str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={"PATH": tool_path()})
    return proc.returncode, proc.stdout + proc.stderr


def run_lint(args):
    if not Path(args.verilog).exists():
        print(f"cgaccel lint: {args.verilog} does not exist (run `make verilog`)", file=sys.stderr)
        return 2
    rc, out = lint_verilog(args.verilog)
    print(out, end="")
    print(f"verilator lint {'clean' if rc == 0 else 'FAILED'}: {args.verilog}")
    return rc
