"""One table of every flow run under a directory: ``python -m cgaccel.synth.table [DIR]``.

``make synth`` leaves one ``report.json`` per run under ``build/synth/``; this prints them side
by side (Markdown), so the figures a user quotes come from the files the runs wrote. A run's
configuration is named by the preset it equals (``custom`` otherwise).
"""

import argparse
import json
import sys
from pathlib import Path

from ..config import PRESETS, preset

__all__ = ["collect", "seed_summary", "format_table", "main"]

COLUMNS = ("dir", "target", "config", "top", "clock MHz", "Fmax MHz", "met", "LUTs", "FFs",
           "DSPs", "BRAMs", "seed", "seconds", "bitstream")


def _config_name(cfg):
    for name in PRESETS:
        if preset(name).to_dict() == cfg:
            return name
    return "custom"


def _row(path, rep, root):
    top = rep.get("top", "?")
    if rep.get("design") not in (None, "Top", "BoardTop"):
        top = f"{top} {rep['design']}"
    if rep.get("board"):
        top = f"{top} {rep['board']}" + (f" {rep['dram']}" if rep.get("dram") else "")
    util = rep.get("util_pct", {})

    def res(key):
        if key not in rep:
            est = rep.get("synth_estimate", {})
            return f"({est[key]})" if key in est else "-"
        return f"{rep[key]} ({util[key]}%)" if key in util else str(rep[key])

    fmax = rep.get("fmax_mhz")
    if fmax is None:
        fmax_s = "synthesis only" if "route_failure" not in rep else "not routed"
    else:
        fmax_s = f"{fmax:g}" + ("" if rep.get("routed", True) else " (placed)")
    met = rep.get("timing_met")
    return {
        "dir": str(path.parent.relative_to(root)) or ".", "target": rep.get("target", "?"),
        "config": _config_name(rep.get("config")), "top": top,
        "clock MHz": f"{rep['freq_target_mhz']:g}" if "freq_target_mhz" in rep else "-",
        "Fmax MHz": fmax_s, "met": "-" if met is None else ("yes" if met else "no"),
        "LUTs": res("luts"), "FFs": res("ffs"), "DSPs": res("dsps"), "BRAMs": res("brams"),
        "seed": str(rep.get("seed", "-")),
        "seconds": f"{rep['seconds']:.0f}" if "seconds" in rep else "-",
        "bitstream": "yes" if (rep.get("files") or {}).get("bitstream") else "no",
    }


def _reports(root):
    """``[(path, report)]`` of every flow report under ``root`` (sorted by directory)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"Directory must exist, not {str(root)!r}")
    out = []
    for path in sorted(root.rglob("report.json")):
        try:
            rep = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"Report must be JSON, not {path} ({e})") from None
        if isinstance(rep, dict) and "target" in rep:
            out.append((path, rep))
    return out


def collect(root):
    """Rows of every ``report.json`` under ``root`` (sorted by directory)."""
    return [_row(path, rep, root) for path, rep in _reports(root)]


SUMMARY_COLUMNS = ("design", "target", "config", "routed runs", "seeds", "Fmax mean",
                   "Fmax min", "Fmax max")


def seed_summary(root):
    """One row per design, target (and speed grade) and configuration routed more than once
    under ``root``: the Fmax over its runs (seeds). A block's Fmax alone moves by several MHz
    from seed to seed, more than many changes do, so one seed says little."""
    groups = {}
    for path, rep in _reports(root):
        if rep.get("fmax_mhz") is None or not rep.get("routed", True):
            continue
        row = _row(path, rep, root)
        grade = rep.get("speed_grade")
        target = row["target"] + (f" (speed {grade})" if grade not in (None, 6) else "")
        groups.setdefault((row["top"], target, row["config"]), []).append(rep)
    rows = []
    for (top, target, config), reps in groups.items():
        if len(reps) < 2:
            continue
        fmax = [r["fmax_mhz"] for r in reps]
        rows.append({
            "design": top, "target": target, "config": config,
            "routed runs": str(len(reps)),
            "seeds": ",".join(str(r.get("seed", "-")) for r in reps),
            "Fmax mean": f"{sum(fmax) / len(fmax):.2f}", "Fmax min": f"{min(fmax):g}",
            "Fmax max": f"{max(fmax):g}",
        })
    return rows


def format_table(rows, columns=COLUMNS):
    """A Markdown table of ``rows`` (every column of ``columns``)."""
    widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in columns}
    lines = ["| " + " | ".join(c.ljust(widths[c]) for c in columns) + " |",
             "|" + "|".join("-" * (widths[c] + 2) for c in columns) + "|"]
    lines += ["| " + " | ".join(r[c].ljust(widths[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cgaccel.synth.table",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", default="build/synth",
                        help="directory holding the runs (default: build/synth)")
    args = parser.parse_args(argv)
    try:
        rows = collect(args.dir)
    except ValueError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 1
    if not rows:
        print(f"{parser.prog}: error: no report.json under {args.dir}", file=sys.stderr)
        return 1
    print(format_table(rows))
    summary = seed_summary(args.dir)
    if summary:
        print("\nOver seeds:\n")
        print(format_table(summary, SUMMARY_COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
