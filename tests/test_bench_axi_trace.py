"""Per-command timing from an AXI trace (``cgaccel.bench.axi_trace``) on synthetic traces; the
bench's traced runs are checked in ``sim/e2e``."""

from types import SimpleNamespace

import pytest

from cgaccel.bench.axi_trace import compare, fetch_cycles, summarize
from cgaccel.commands import Command, Op

BASE = 0x10000


def _compiled(ops):
    return SimpleNamespace(cmd_addr=BASE, commands=[
        Command(op=op, inner=4, outer=2) if op in (Op.LOAD, Op.STORE) else Command(op=op)
        for op in ops])


def _events(fetches, extra=()):
    ev = [(c, "AR", BASE + 32 * i, 1) for i, c in enumerate(fetches)]
    return sorted(ev + list(extra))


def test_fetch_cycles_take_each_commands_first_read():
    comp = _compiled([Op.LOAD, Op.RUN, Op.STORE, Op.END])
    data = [(12, "AR", 0x40000, 3), (13, "R", 0, 0), (30, "AR", BASE + 32, 1),  # a re-read
            (31, "AW", 0x80000, 0), (34, "B", 0, 0)]
    assert fetch_cycles(comp, _events([1, 25, 40, 70], data)) == [1, 25, 40, 70]


def test_missing_fetch_is_an_error():
    comp = _compiled([Op.LOAD, Op.RUN, Op.END])
    with pytest.raises(ValueError, match="fetch of each of the 3 commands, not 2"):
        fetch_cycles(comp, _events([1, 25]))


def test_compare_and_summary():
    comp = _compiled([Op.LOAD, Op.LOAD, Op.RUN, Op.STORE, Op.END])
    events = _events([0, 20, 45, 57, 100])
    est = SimpleNamespace(timeline=[20, 45, 57, 99, 110])
    rows = compare(comp, events, est)
    assert [(i, rtl, model) for i, _, rtl, model in rows] == [(1, 25, 25), (2, 12, 12),
                                                              (3, 43, 42)]
    assert summarize(rows) == ["STORE target 0 inner 4 outer 2: 1 commands differ, "
                               "model - RTL = -1 cycles in all"]
    est_same = SimpleNamespace(timeline=[20, 45, 57, 100, 110])
    assert summarize(compare(comp, events, est_same)) == [
        "all 3 commands: model and RTL agree to the cycle"]
    with pytest.raises(ValueError, match="timeline=True"):
        compare(comp, events, SimpleNamespace(timeline=None))
