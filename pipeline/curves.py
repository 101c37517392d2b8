"""Plot-ready curves for ``dvc plots``, derived from the reports the training stages already write.

The training stages write their curves in the shape they log them (one row per epoch per model, GAN
losses as lists inside a report); a person wants them side by side. These pure functions reshape
them into long-format rows that the Vega-Lite templates in ``.dvc/plots/`` draw: every row names
its line (``series``); rows for the grid template also name their panel (``panel``). Nothing here
is computed anew: every value is copied from a report, so the curves cannot disagree with it.
"""

from __future__ import annotations

import re
from typing import Any

Row = dict[str, Any]

P_STAR = "p* = {:.3f} (Confidence Adaptation's target)"
BASELINE_END = "baseline after its training ({:.3f})"
_CHUNK_KEY = re.compile(r"history_mean_per_(\d+)_iterations")


def _run_label(name: str, row: Row) -> str:
    """``hardened (low_rank)`` for a phased defense's epoch, else the run's own name."""
    phase = row.get("phase")
    return f"{name} ({phase})" if phase else name


def classifier_curves(runs: dict[str, list[Row]]) -> list[Row]:
    """Per-epoch natural accuracy and loss of every classifier training run, one series per run or phase.

    Args:
        runs: run name → that stage's per-epoch rows (``reports/plots/<stage>.json``); a phased
            defense (CALoR) marks each row with its ``phase``, which becomes its own series.
    Returns:
        Rows ``{series, panel, epoch, val_natural_accuracy, train_loss}``; ``panel`` = ``series``,
        so the loss grid gives every run its own y scale (CALoR's CA loss is negative and tiny).
    """
    rows = []
    for name, history in runs.items():
        for row in history:
            label = _run_label(name, row)
            values = {key: row[key] for key in ("epoch", "val_natural_accuracy", "train_loss")}
            rows.append({"series": label, "panel": label, **values})
    return rows


def confidence_curve(history: list[Row], harden_report: dict[str, Any]) -> list[Row]:
    """The hardened model's train-set mean true-class probability per epoch, with p* and the baseline's.

    Confidence Adaptation pulls mean p_y towards p* (``target_confidence`` in ``reports/harden.json``);
    the curve shows whether it got there. p* is drawn only when the defense has one.
    """
    rows = []
    for row in history:
        label = _run_label("train mean p_y", row)
        rows.append({"series": label, "epoch": row["epoch"], "mean_true_prob": row["train_mean_true_prob"]})
    epochs = [row["epoch"] for row in history]
    references = {
        P_STAR: harden_report.get("target_confidence"),
        BASELINE_END: harden_report.get("baseline_train_mean_true_class_prob"),
    }
    for label, value in references.items():
        if value is not None:
            rows += [{"series": label.format(value), "epoch": epoch, "mean_true_prob": value} for epoch in epochs]
    return rows


def prior_gan_curve(prior_report: dict[str, Any]) -> list[Row]:
    """The generic GAN prior's per-epoch mean losses (``reports/train_prior.json``)."""
    return [
        {"series": name, "epoch": epoch, "loss": value}
        for name in ("d_loss", "g_loss")
        for epoch, value in enumerate(prior_report[name], start=1)
    ]


def target_gan_curves(reports: list[dict[str, Any]]) -> list[Row]:
    """Every target-specific GAN's losses, one panel per (GAN, attacked model), x = iteration.

    Each ``reports/target_gan/<model>.json`` holds, per GAN, each loss averaged over consecutive
    windows of N iterations (``history_mean_per_N_iterations``); a point sits at its window's end.
    """
    rows = []
    for report in reports:
        for gan, entry in report["gans"].items():
            keys = [key for key in entry if _CHUNK_KEY.fullmatch(key)]
            if len(keys) != 1:
                where = f"target GAN {gan!r} of {report['model']!r}"
                raise ValueError(f"{where}: expected one history_mean_per_N_iterations entry, found {keys}")
            size = int(_CHUNK_KEY.fullmatch(keys[0]).group(1))
            panel = f"{gan} vs {report['model']}"
            for name, values in entry[keys[0]].items():
                rows += [
                    {"panel": panel, "series": name, "iteration": (i + 1) * size, "loss": value}
                    for i, value in enumerate(values)
                ]
    return rows
