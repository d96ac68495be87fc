"""``cgaccel`` command line: one subcommand per product function.

Every subcommand takes ``--config PRESET`` and ``-p key=value`` overrides; the resulting
:class:`~cgaccel.config.AccelConfig` reaches it as ``args.config_obj``. Subcommands implemented in
other modules expose ``add_arguments(parser)`` and ``run(args) -> int``.
"""

import argparse
import importlib
import sys

from .config import PRESETS, parse_overrides, preset

__all__ = ["main"]

# name: (module, help). The module provides add_arguments(parser) and run(args).
SUBCOMMANDS = {
    "verilog": ("cgaccel.cli_verilog", "emit the top-level Verilog"),
    "header": ("cgaccel.header", "write the C or JSON header for host software"),
    "lint": ("cgaccel.cli_verilog", "verilator --lint-only -Wall on an emitted Verilog file"),
    "vectors": ("cgaccel.model.vectors", "write a test-vector file from the golden model"),
    "run": ("cgaccel.driver_cli", "run a vectors file on the emitted RTL in cocotb"),
    "bench": ("cgaccel.bench.cli", "print the performance table"),
    "synth": ("cgaccel.synth.flow", "open FPGA flow: yosys + nextpnr + pack"),
    "board-run": ("cgaccel.synth.boardrun",
                  "run a vectors file on a loaded board bitstream over its UART"),
}


def _load(module_name):
    """Import a subcommand module; None when that part of the product is not built yet."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None
        raise


def build_parser():
    parser = argparse.ArgumentParser(
        prog="cgaccel", description="Generator of CNN accelerators for channel-gated networks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", default="default", choices=sorted(PRESETS),
                       help="configuration preset (default: %(default)s)")
        p.add_argument("-p", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one config parameter, e.g. -p rows=4 (repeatable)")
        module = _load(module_name)
        if module is None:
            p.set_defaults(func=None)
            continue
        adder = getattr(module, f"add_{name}_arguments", None) or module.add_arguments
        runner = getattr(module, f"run_{name}", None) or module.run
        adder(p)
        p.set_defaults(func=runner)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.config_obj = preset(args.config).with_overrides(**parse_overrides(args.overrides))
    except (TypeError, ValueError) as exc:
        print(f"cgaccel {args.command}: {exc}", file=sys.stderr)
        return 2
    if args.func is None:
        print(f"cgaccel {args.command}: not implemented yet", file=sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
