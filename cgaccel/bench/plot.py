"""Per-layer plot: measured (or modelled) speedup of the gated layer against the ideal.

The ideal speedup of a layer is its theoretical executed-MAC reduction (``mac_reduction``); a
layer at efficiency 1.0 sits on it. Rendering uses matplotlib's non-interactive Agg backend.
"""

__all__ = ["plot_speedup"]


def plot_speedup(records, path, *, title=None):
    """Write a bar chart of ``speedup`` vs ``mac_reduction`` per layer to ``path`` (PNG).

    Layers without a gated version are left out. Per layer: the ideal, the compute-cycle
    speedup and, when the records have total cycles, the start-to-done speedup. RTL-measured
    bars are solid, model estimates hatched.

    Raises
    ------
    ValueError
        No record has a gated version.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [r for r in records if r.get("speedup") is not None]
    if not recs:
        raise ValueError("records must include at least one gated layer, not none")
    n = len(recs)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * n + 2), 4.5))
    xs = range(n)
    ideal = [r["mac_reduction"] for r in recs]
    meas = [r["speedup"] for r in recs]
    # Start to done (DMA and controller included), when the records have it.
    total = [r["dense_total_cycles"] / r["gated_total_cycles"]
             if r.get("dense_total_cycles") and r.get("gated_total_cycles") else None
             for r in recs]
    w = 0.27
    ax.bar([x - w for x in xs], ideal, width=w, color="#bbbbbb")
    for x, r, v, t in zip(xs, recs, meas, total, strict=True):
        hatch = None if r["source"] == "rtl" else "//"
        ax.bar(x, v, width=w, color="#1f77b4", hatch=hatch, edgecolor="white")
        if t is not None:
            ax.bar(x + w, t, width=w, color="#ff7f0e", hatch=hatch, edgecolor="white")
    from matplotlib.patches import Patch
    handles = [Patch(facecolor="#bbbbbb", label="ideal (MAC reduction)"),
               Patch(facecolor="#1f77b4", label="compute speedup, RTL-measured"),
               Patch(facecolor="#1f77b4", hatch="//", edgecolor="white", label="model"),
               Patch(facecolor="#ff7f0e", label="start-to-done speedup")]
    ax.set_xticks(list(xs))
    ax.set_xticklabels([r["layer"].split(".", 1)[-1] for r in recs], rotation=60, ha="right",
                       fontsize=8)
    ax.set_ylabel("dense cycles / gated cycles")
    ax.axhline(1.0, color="black", linewidth=0.5)
    # Headroom above the bars for the legend.
    ax.set_ylim(0, 1.35 * max(ideal + meas))
    ax.legend(handles=handles, fontsize=8, loc="upper center", ncol=4)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
