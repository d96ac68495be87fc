"""Per-command timing of an end-to-end run from its AXI trace, beside the end-to-end model.

The ``sim/e2e`` bench can record every handshake on the top's AXI4 master (case key
``axi_trace``, or ``cgaccel run --axi-trace FILE``): events ``(cycle, kind, addr, len)`` with
kind ``AR``, ``R``, ``AW``, ``B`` (``addr``/``len`` of the address channels, else 0). The
controller fetches each command with a read of its 32 bytes, so the cycles between two
command fetches are one command's duration, which :func:`compare` sets beside
:func:`cgaccel.bench.e2e_model.estimate_e2e`'s timeline: this is how the model's front-end
constants were read off (``docs/bench.md``).
"""

import json
from collections import Counter, defaultdict
from pathlib import Path

from ..commands import COMMAND_BYTES, Op

__all__ = ["load_trace", "fetch_cycles", "compare", "summarize"]

OPS = {Op.END: "END", Op.LOAD: "LOAD", Op.RUN: "RUN", Op.STORE: "STORE"}


def load_trace(path):
    """The events of a trace file as a list of ``(cycle, kind, addr, len)`` tuples."""
    return [tuple(e) for e in json.loads(Path(path).read_text())]


def fetch_cycles(compiled, events):
    """Cycle of each command's fetch (its AR handshake), in command order.

    Raises
    ------
    ValueError
        The trace does not hold one fetch of every command (another run's trace, or cut
        short).
    """
    lo = compiled.cmd_addr
    n = len(compiled.commands)
    seen = {}
    for cycle, kind, addr, _ in events:
        idx, off = divmod(addr - lo, COMMAND_BYTES)
        if kind == "AR" and off == 0 and 0 <= idx < n and idx not in seen:
            seen[idx] = cycle
    if len(seen) != n:
        raise ValueError(f"trace must hold a fetch of each of the {n} commands, not "
                         f"{len(seen)}")
    return [seen[i] for i in range(n)]


def compare(compiled, events, estimate):
    """Rows ``(index, command, rtl_cycles, model_cycles)`` for every command but the last:
    the cycles from its fetch to the next one's, measured and predicted (``estimate`` from
    ``estimate_e2e(..., timeline=True)``)."""
    if estimate.timeline is None:
        raise ValueError("estimate must come from estimate_e2e(..., timeline=True), not "
                         "without a timeline")
    fetch = fetch_cycles(compiled, events)
    ends = estimate.timeline
    return [(i, compiled.commands[i], fetch[i + 1] - fetch[i], ends[i] - ends[i - 1])
            for i in range(1, len(fetch) - 1)]


def summarize(rows, limit=10):
    """Text lines: per command kind (op, target, inner, outer), how often the model and the
    RTL part and by how many cycles in all, worst first."""
    miss = defaultdict(int)
    count = Counter()
    for _, cmd, rtl, model in rows:
        if rtl != model:
            key = (OPS.get(cmd.op, str(cmd.op)), cmd.target, cmd.inner, cmd.outer)
            miss[key] += model - rtl
            count[key] += 1
    if not miss:
        return [f"all {len(rows)} commands: model and RTL agree to the cycle"]
    lines = []
    for key in sorted(miss, key=lambda k: -abs(miss[k]))[:limit]:
        op, target, inner, outer = key
        lines.append(f"{op} target {target} inner {inner} outer {outer}: {count[key]} "
                     f"commands differ, model - RTL = {miss[key]:+d} cycles in all")
    return lines
