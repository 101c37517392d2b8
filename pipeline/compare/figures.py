"""The comparison's PNGs: the accuracy/privacy trade-off, per-attack heat map, side-by-side grids."""

from __future__ import annotations

import os
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from pipeline.compare.markdown import pm  # noqa: E402
from pipeline.io import atomic_path  # noqa: E402

KIND_STYLE = {
    "baseline": {"marker": "*", "color": "black", "s": 160},
    "floor": {"marker": "X", "color": "tab:red", "s": 70},
    "reference": {"marker": "D", "color": "tab:green", "s": 70},
    "control": {"marker": "s", "color": "tab:gray", "s": 60},
    "defense": {"marker": "o", "color": "tab:blue", "s": 60},
    "ablation": {"marker": "^", "color": "tab:orange", "s": 60},
}


def _save(fig, path: str | os.PathLike) -> None:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def _points(ax, table: dict[str, Any], labels: bool) -> None:
    for i, row in enumerate(table["rows"]):
        style = KIND_STYLE[row["kind"]]
        x, y = row["worst_case_acc1"], row["natural_accuracy"]
        ax.errorbar(x["mean"], y["mean"], xerr=x["std"], yerr=y["std"], fmt="none", ecolor=style["color"],
                    alpha=0.5, capsize=3)  # fmt: skip
        ax.scatter(x["mean"], y["mean"], marker=style["marker"], color=style["color"], s=style["s"], zorder=3,
                   label=row["kind"])  # fmt: skip
        if labels:  # staggered offsets keep neighbouring labels apart
            ax.annotate(row["setting"], (x["mean"], y["mean"]), textcoords="offset points", fontsize=7,
                        xytext=(6, 10 - 7 * (i % 4)), arrowprops={"arrowstyle": "-", "alpha": 0.3})  # fmt: skip


def tradeoff_plot(path: str | os.PathLike, table: dict[str, Any]) -> None:
    """Natural accuracy vs worst-case Acc@1, mean ± std over seeds, the gate's pass region shaded;
    right panel: the same points zoomed to where they cluster, labelled. The shading shows the Acc@1 and
    accuracy thresholds only: the gate judges the Acc@1 upper bound, and its leakage-over-the-floor rule
    (relative to the baseline) has no line on these axes."""
    gate = table["gate"]
    fig, (ax, zoom) = plt.subplots(1, 2, figsize=(14, 5.5), gridspec_kw={"width_ratios": [1, 1.3]})
    _points(ax, table, labels=False)
    _points(zoom, table, labels=True)
    bottom, top = ax.get_ylim()
    ax.fill_between([0, gate["max_attack_acc1"]], table["accuracy_floor"], top, color="tab:green", alpha=0.08,
                    label="gate passes")  # fmt: skip
    ax.set_ylim(min(bottom, table["accuracy_floor"] - 0.01), top)
    ax.set_xlim(0, 1)
    for axis in (ax, zoom):
        axis.axvline(gate["max_attack_acc1"], color="tab:red", linestyle="--", linewidth=1)
        axis.axhline(table["accuracy_floor"], color="tab:red", linestyle=":", linewidth=1)
        axis.set_xlabel("worst-case judge Acc@1 over the suite (lower = more private)")
        axis.grid(alpha=0.3)
    ax.text(gate["max_attack_acc1"], ax.get_ylim()[0], " gate: max worst-case Acc@1\n (for its upper bound;\n"
            " the leakage rule is not drawn)", color="tab:red", fontsize=7, va="bottom")  # fmt: skip
    ax.text(0.99, table["accuracy_floor"], "gate: accuracy floor ", color="tab:red", fontsize=7, ha="right",
            va="bottom", transform=ax.get_yaxis_transform())  # fmt: skip
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=8, loc="lower left")
    ax.set_ylabel("natural accuracy, private test split")
    ax.set_title(f"Accuracy vs privacy, mean ± std over seeds {table['seeds']}", fontsize=10)
    zoom.set_title("zoom on the points (error bars as left)", fontsize=10)
    means = [(r["worst_case_acc1"]["mean"], r["natural_accuracy"]["mean"]) for r in table["rows"]]
    xs, ys = zip(*means, strict=True)
    zoom.set_xlim(min(xs) - 0.05, max(xs) + 0.08)
    zoom.set_ylim(min(ys) - 0.01, max(ys) + 0.01)
    _save(fig, path)


def attack_heatmap(path: str | os.PathLike, table: dict[str, Any]) -> None:
    """Settings × attacks, judge Acc@1 mean over seeds, annotated; the strongest attack per row boxed."""
    rows = table["rows"]
    attacks = list(rows[0]["attacks"])
    values = np.array([[row["attacks"][a]["mean"] for a in attacks] for row in rows])
    fig, ax = plt.subplots(figsize=(1.1 * len(attacks) + 3, 0.45 * len(rows) + 1.5))
    image = ax.imshow(values, cmap="Reds", vmin=0, vmax=1, aspect="auto")
    for i, row in enumerate(rows):
        for j, attack in enumerate(attacks):
            stat = row["attacks"][attack]
            weight = "bold" if j == int(values[i].argmax()) else "normal"
            ax.text(j, i, f"{stat['mean']:.2f}\n±{stat['std']:.2f}", ha="center", va="center", fontsize=6,
                    fontweight=weight, color="white" if stat["mean"] > 0.6 else "black")  # fmt: skip
    ax.set_xticks(range(len(attacks)), attacks, rotation=35, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [r["setting"] for r in rows], fontsize=7)
    fig.colorbar(image, ax=ax, label="judge Acc@1")
    ax.set_title("Attack Acc@1 per setting (bold = strongest attack)", fontsize=9)
    _save(fig, path)


def side_by_side_grid(
    path: str | os.PathLike, attack: str, reconstructions: dict[str, dict[str, torch.Tensor]],
    private_images: torch.Tensor, private_labels: torch.Tensor, class_names: list[str],
) -> None:  # fmt: skip
    """One row per setting (real private images on top), one column per class: the first
    reconstruction of that class by ``attack`` (seed of the first compare seed)."""
    classes = sorted(private_labels.unique().tolist())
    names = ["private test (real)", *reconstructions]
    fig, axes = plt.subplots(len(names), len(classes), figsize=(0.8 * len(classes) + 1.8, 0.8 * len(names) + 0.6),
                             squeeze=False)  # fmt: skip
    for i, name in enumerate(names):
        if i == 0:
            images, labels = private_images, private_labels
        else:
            images, labels = reconstructions[name]["images"], reconstructions[name]["labels"]
        for j, cls in enumerate(classes):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            picked = images[labels == cls]
            if len(picked):
                ax.imshow(picked[0, 0].float().numpy() / 255.0, cmap="gray", vmin=0, vmax=1)
            if i == 0:
                ax.set_title(class_names[cls] if cls < len(class_names) else str(cls), fontsize=6)
        axes[i, 0].set_ylabel(name, fontsize=6, rotation=0, ha="right", va="center")
    fig.suptitle(f"{attack}: one reconstruction per class, per setting", fontsize=9)
    _save(fig, path)


def sweep_heatmap(path: str | os.PathLike, result: dict[str, Any]) -> None:
    """Worst-case Acc@1 over the (r, b) grid; accuracy drop in each cell; the chosen point boxed."""
    ranks = sorted({p["rank"] for p in result["grid"]})
    exponents = sorted({p["b"] for p in result["grid"]})
    cell = {(p["rank"], p["b"]): p for p in result["grid"]}
    values = np.full((len(ranks), len(exponents)), np.nan)
    fig, ax = plt.subplots(figsize=(1.6 * len(exponents) + 2, 1.1 * len(ranks) + 1.2))
    for i, r in enumerate(ranks):
        for j, b in enumerate(exponents):
            if (r, b) not in cell:
                continue
            p = cell[(r, b)]
            values[i, j] = p["worst_case_acc1"]["mean"]
            ax.text(j, i, f"{pm(p['worst_case_acc1'], 2)}\ndrop {p['natural_accuracy_drop']['mean']:+.3f}",
                    ha="center", va="center", fontsize=7)  # fmt: skip
    image = ax.imshow(values, cmap="Reds", vmin=0, vmax=1)
    chosen = result["chosen"]
    if chosen is not None:
        i, j = ranks.index(chosen["rank"]), exponents.index(chosen["b"])
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="tab:blue", linewidth=2.5))
    ax.set_xticks(range(len(exponents)), [f"b={b:g}" for b in exponents])
    ax.set_yticks(range(len(ranks)), [f"r={r}" for r in ranks])
    fig.colorbar(image, ax=ax, label="worst-case judge Acc@1")
    ax.set_title("CALoR sweep: worst-case Acc@1 (mean ± std), accuracy drop; box = chosen", fontsize=8)
    _save(fig, path)
