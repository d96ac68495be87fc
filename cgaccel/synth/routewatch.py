"""Give up on a nextpnr run that will not finish, with a reason the user can act on.

nextpnr's router2 iterates until no wire is overused, with no limit: on a design that does not
route (``default`` on the ECP5-85F, ``docs/synth.md``) it ran for hours, the overuse falling to
a floor and rising again. :class:`RouteWatch` reads the log as it grows and calls routing
stalled when the lowest overuse has not improved for ``patience`` iterations while still far
above zero, or has since risen far above zero again; a design that routes falls steadily and
only idles near zero (``tiny`` spent 21 iterations between 1 and 4 overused wires before
routing), which the floor leaves alone.
"""

import re

__all__ = ["RouteWatch", "RouteStall"]

_ITER = re.compile(r"iter=(\d+) wires=\d+ overused=(\d+)")


class RouteStall:
    """Why a run was stopped: ``kind`` is ``"stall"`` (routing), ``"timeout"`` or ``"limit"``
    (iterations)."""

    def __init__(self, kind, message, history):
        self.kind = kind
        self.message = message
        #: ``[(iteration, overused wires), ...]`` of router2 up to the stop.
        self.history = list(history)

    def __repr__(self):
        return f"RouteStall({self.kind!r}, {self.message!r})"


class RouteWatch:
    """Watch a nextpnr log; :meth:`poll` returns a :class:`RouteStall` when to stop.

    Parameters
    ----------
    patience : int
        router2 iterations without a new lowest overused-wire count after which routing is
        called stalled, if that lowest count is still above the floor, or the current count
        is above the floor and twice the lowest again; 0 never stops.
    floor : float
        The floor as a fraction of the first iteration's overused wires (at least
        ``min_floor``): below it the router is finishing, however slowly.
    min_floor : int
        Smallest floor, in wires.
    timeout_s : float, optional
        Stop the whole nextpnr run (placement included) after this many seconds.
    max_iterations : int, optional
        Stop when router2 reaches this iteration (kind ``"limit"``): the flow's timing-repair
        pass (:func:`cgaccel.synth.flow.synthesize`, ``repair``), whose timing-driven ripup
        can go on rerouting for ever once its target is out of reach.
    """

    def __init__(self, patience=6, floor=0.02, min_floor=200, timeout_s=None,
                 max_iterations=None):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"Route patience must be a non-negative integer, not {patience!r}")
        if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not 0 <= floor < 1:
            raise ValueError(f"Route floor must be a fraction in [0, 1), not {floor!r}")
        if isinstance(min_floor, bool) or not isinstance(min_floor, int) or min_floor < 0:
            raise ValueError(f"Minimum route floor must be a non-negative integer, "
                             f"not {min_floor!r}")
        if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(
                timeout_s, (int, float)) or timeout_s <= 0):
            raise ValueError(f"Timeout must be a positive number of seconds, not {timeout_s!r}")
        if max_iterations is not None and (isinstance(max_iterations, bool) or not isinstance(
                max_iterations, int) or max_iterations < 1):
            raise ValueError(f"Iteration limit must be a positive integer, "
                             f"not {max_iterations!r}")
        self.max_iterations = max_iterations
        self.patience = patience
        self.floor = floor
        self.min_floor = min_floor
        self.timeout_s = timeout_s
        self.history = []
        self._partial = ""
        self._best = None          # (overused, iteration)

    def poll(self, text, elapsed_s=0.0):
        """Feed the log text written since the last call; return a stop reason or None."""
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            m = _ITER.search(line)
            if m:
                self._iteration(int(m.group(1)), int(m.group(2)))
                if self.max_iterations is not None and self.history[-1][0] >= self.max_iterations:
                    return RouteStall("limit", f"router2 reached its limit of "
                                      f"{self.max_iterations} iterations{self._progress()}",
                                      self.history)
                stall = self._stalled()
                if stall is not None:
                    return stall
        if self.timeout_s is not None and elapsed_s >= self.timeout_s:
            return RouteStall("timeout", f"nextpnr stopped after {elapsed_s / 60:.1f} minutes "
                              f"(the limit is {self.timeout_s / 60:g}){self._progress()}",
                              self.history)
        return None

    def _iteration(self, it, overused):
        self.history.append((it, overused))
        if self._best is None or overused < self._best[0]:
            self._best = (overused, it)

    def _stalled(self):
        if not self.patience or not self.history:
            return None
        best, best_it = self._best
        last_it, last = self.history[-1]
        first = self.history[0][1]
        floor = max(self.min_floor, self.floor * first)
        if last_it - best_it < self.patience:
            return None
        # Below the floor the router is finishing, unless it has climbed back above it (and
        # above twice its lowest): ``default``'s top at one seed fell to 198 overused wires,
        # then rose for 40 iterations past 1,800, which the floor alone let run for ever.
        if best <= floor and last <= max(floor, 2 * best):
            return None
        return RouteStall(
            "stall",
            f"router2 made no progress in {last_it - best_it} iterations{self._progress()}; "
            f"the device's routing wires are the resource that ran out", self.history)

    def _progress(self):
        if not self.history:
            return ""
        (it0, first), (itn, last) = self.history[0], self.history[-1]
        best, best_it = self._best
        return (f" (overused wires: {first} at iteration {it0}, lowest {best} at iteration "
                f"{best_it}, {last} at iteration {itn})")
