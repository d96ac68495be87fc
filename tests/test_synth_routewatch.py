"""cgaccel.synth.routewatch: when a nextpnr run is given up, on measured router2 histories."""

import pytest

from cgaccel.synth.routewatch import RouteWatch

# router2's overused wires per iteration, from docs/synth.md: ``tiny`` on the ULX3S-85F board
# top (routed at iteration 45 after 21 iterations between 0 and 4) and ``default`` on the
# ECP5-85F block top (lowest at iteration 7, then rising; stopped by hand after iteration 10).
TINY = [18738, 10529, 5539, 2707, 1300, 670, 401, 235, 145, 90, 51, 38, 31, 26, 16, 10, 7, 5,
        4, 5, 4, 2, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 2, 4, 3, 1, 2, 1, 2, 1, 2, 1, 2, 2]
DEFAULT = [93056, 67772, 53393, 45424, 41665, 40365, 40288, 41375, 42435, 44547]
# ``default``'s block top with the branch cycle-neutral-timing's RTL at seed 2 (stop 24): down
# to 198 at iteration 36, below the floor, then up past it (stopped by hand at iteration 76).
RELAPSE = [47677, 29305, 18964, 12409, 8474, 6017, 4559, 3601, 2791, 2249, 1769, 1476, 1257,
           1080, 895, 792, 727, 577, 530, 519, 476, 441, 378, 331, 328, 371, 365, 369, 327,
           322, 299, 280, 239, 227, 207, 198, 232, 234, 208, 205, 257, 231, 225, 199, 243, 274,
           263, 313, 309, 342, 304, 345, 372, 407, 412, 424, 395, 377, 395, 400, 413, 457, 495,
           547, 582, 698, 678, 757, 860, 907, 1025, 1223, 1261, 1435, 1561, 1890]


def _log(values, start=1):
    return "".join(f"Info:     iter={i} wires={300000 + v} overused={v} overuse={v + 7} "
                   "archfail=NA\n" for i, v in enumerate(values, start))


def test_a_router_that_finishes_is_never_stopped():
    watch = RouteWatch()
    text = "Info: Routing..\n" + _log(TINY)
    # Fed in odd-sized pieces: lines split anywhere are joined before they are read.
    for i in range(0, len(text), 37):
        assert watch.poll(text[i:i + 37], elapsed_s=i) is None
    assert [v for _, v in watch.history] == TINY


def test_a_stalled_router_is_stopped_with_its_history():
    watch = RouteWatch(patience=6)
    assert watch.poll(_log(DEFAULT)) is None        # 3 iterations past the lowest
    assert watch.poll(_log([45000, 46000], start=11)) is None
    stop = watch.poll(_log([47000], start=13))        # the 6th without a new lowest
    assert stop is not None and stop.kind == "stall"
    assert stop.message == (
        "router2 made no progress in 6 iterations (overused wires: 93056 at iteration 1, "
        "lowest 40288 at iteration 7, 47000 at iteration 13); the device's routing wires are "
        "the resource that ran out")
    assert stop.history[-1] == (13, 47000) and len(stop.history) == 13


def test_a_new_lowest_restarts_the_count_and_the_floor_scales():
    watch = RouteWatch(patience=3, floor=0.1, min_floor=0)
    assert watch.poll(_log([1000, 900, 950, 960, 890, 900, 910])) is None
    assert watch.poll(_log([905], start=8)).kind == "stall"
    # Below the floor (10% of the first iteration's 1000) the router is left to finish.
    watch = RouteWatch(patience=3, floor=0.1, min_floor=0)
    assert watch.poll(_log([1000, 99, 120, 130, 140, 150, 160])) is None
    never = RouteWatch(patience=0)
    assert never.poll(_log(DEFAULT + [50000] * 20)) is None


def test_a_router_that_climbs_back_above_the_floor_is_stopped():
    """Below the floor is left alone, but not a count that rose from there to above the floor
    (953 wires here, 2% of the first iteration) and twice its lowest."""
    watch = RouteWatch(patience=6)
    assert watch.poll(_log(RELAPSE[:70])) is None       # 907 at iteration 70: still below
    stop = watch.poll(_log(RELAPSE[70:], start=71))
    assert stop is not None and stop.kind == "stall"
    assert stop.history[-1] == (71, 1025)
    assert "lowest 198 at iteration 36, 1025 at iteration 71" in stop.message
    # Above the floor but within twice the lowest: a router still close to finishing.
    watch = RouteWatch(patience=3, floor=0.1, min_floor=0)
    assert watch.poll(_log([1000, 90, 95, 105, 110, 120, 150, 170])) is None


def test_timeout_and_bad_parameters():
    watch = RouteWatch(timeout_s=120)
    assert watch.poll("Info: placing\n", elapsed_s=119) is None
    stop = watch.poll(_log([500, 400]), elapsed_s=120)
    assert stop.kind == "timeout"
    assert stop.message == ("nextpnr stopped after 2.0 minutes (the limit is 2) (overused "
                            "wires: 500 at iteration 1, lowest 400 at iteration 2, 400 at "
                            "iteration 2)")
    with pytest.raises(ValueError, match="Route patience must be a non-negative integer, "
                                         "not -1"):
        RouteWatch(patience=-1)
    with pytest.raises(ValueError, match="Route patience must be a non-negative integer, "
                                         "not True"):
        RouteWatch(patience=True)
    with pytest.raises(ValueError, match=r"Route floor must be a fraction in \[0, 1\), not 1"):
        RouteWatch(floor=1)
    with pytest.raises(ValueError, match="Minimum route floor must be a non-negative integer"):
        RouteWatch(min_floor=-5)
    with pytest.raises(ValueError, match="Timeout must be a positive number of seconds, not 0"):
        RouteWatch(timeout_s=0)


# ``default``'s block top at seed 2 with ``--tmg-ripup --freq 80`` (stop 31): overused wires
# per iteration, each line with its timing-failing arcs; it routed at iteration 66.
RIPUP = [39994, 23647, 14500, 8504, 5268, 3218, 2242, 1541, 1084, 891, 644, 484, 383, 275,
         188, 163, 147, 97, 72, 73, 55, 56, 48, 45, 34, 34, 66, 41, 37, 43, 18, 27, 17, 12, 31,
         6, 15, 11, 25, 14, 10, 14, 10, 14, 8, 10, 11, 7, 2, 9, 5, 6, 18, 1, 2, 2, 1, 1, 1, 1,
         1, 1, 1, 1, 2, 0]


def test_an_iteration_limit_stops_a_router_that_is_still_going():
    text = "".join(f"Info:     iter={i} wires={650000 + v} overused={v} overuse={v} "
                   f"tmgfail={i % 7 * 30} archfail=NA\n" for i, v in enumerate(RIPUP, 1))
    assert RouteWatch(max_iterations=66).poll(text[:text.index("iter=66")]) is None
    stop = RouteWatch(max_iterations=40).poll(text)
    assert stop.kind == "limit" and stop.history[-1] == (40, 14)
    assert stop.message.startswith("router2 reached its limit of 40 iterations (overused "
                                   "wires: 39994 at iteration 1, lowest 6 at iteration 36")
    for bad in (0, True, 2.5):
        with pytest.raises(ValueError, match=f"Iteration limit must be a positive integer, "
                                             f"not {bad!r}"):
            RouteWatch(max_iterations=bad)
