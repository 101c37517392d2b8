"""pipeline.curves: the reports' values, reshaped into one series per run, phase, loss and GAN."""

from __future__ import annotations

import pytest

from pipeline.curves import classifier_curves, confidence_curve, prior_gan_curve, target_gan_curves


def epoch_row(epoch: int, phase: str | None = None, acc: float = 0.5) -> dict:
    row = {"epoch": epoch, "train_loss": 1.0 / epoch, "val_natural_accuracy": acc, "train_mean_true_prob": 0.1 * epoch}
    return {**row, "phase": phase} if phase else row


def test_each_run_and_each_hardening_phase_is_its_own_series():
    runs = {"baseline": [epoch_row(1), epoch_row(2)], "hardened": [epoch_row(1, "low_rank"), epoch_row(2, "ca")]}
    rows = classifier_curves(runs)
    assert [r["series"] for r in rows] == ["baseline", "baseline", "hardened (low_rank)", "hardened (ca)"]
    assert all(r["panel"] == r["series"] for r in rows)  # the loss grid: one panel per run or phase
    assert rows[1] == {"series": "baseline", "panel": "baseline", "epoch": 2, "val_natural_accuracy": 0.5,
                       "train_loss": 0.5}  # fmt: skip


def test_confidence_curve_draws_p_star_and_the_baseline_at_every_epoch():
    history = [epoch_row(1, "low_rank"), epoch_row(2, "confidence_adaptation")]
    rows = confidence_curve(history, {"target_confidence": 0.7788, "baseline_train_mean_true_class_prob": 0.93})
    by_series: dict[str, list[tuple]] = {}
    for row in rows:
        by_series.setdefault(row["series"], []).append((row["epoch"], row["mean_true_prob"]))
    assert by_series == {
        "train mean p_y (low_rank)": [(1, 0.1)],
        "train mean p_y (confidence_adaptation)": [(2, 0.2)],
        "p* = 0.779 (Confidence Adaptation's target)": [(1, 0.7788), (2, 0.7788)],
        "baseline after its training (0.930)": [(1, 0.93), (2, 0.93)],
    }


def test_a_defense_without_p_star_gets_no_p_star_line():
    rows = confidence_curve([epoch_row(1)], {})
    assert {r["series"] for r in rows} == {"train mean p_y"}


def test_prior_losses_are_one_series_each_per_epoch():
    rows = prior_gan_curve({"d_loss": [1.0, 0.9], "g_loss": [2.0, 1.5], "seconds": 3.0})
    assert [(r["series"], r["epoch"], r["loss"]) for r in rows] == [
        ("d_loss", 1, 1.0), ("d_loss", 2, 0.9), ("g_loss", 1, 2.0), ("g_loss", 2, 1.5),
    ]  # fmt: skip


def test_target_gan_points_sit_at_the_end_of_their_window_one_panel_per_gan_and_model():
    report = {"model": "hardened", "gans": {
        "plgmi": {"seconds": 1.0, "history_mean_per_25_iterations": {"d_loss": [1.0, 0.5], "g_inv": [3.0, 2.0]}},
        "kedmi": {"info": {}, "history_mean_per_25_iterations": {"g_loss": [0.7]}},
    }}  # fmt: skip
    rows = target_gan_curves([report])
    assert [(r["panel"], r["series"], r["iteration"], r["loss"]) for r in rows] == [
        ("plgmi vs hardened", "d_loss", 25, 1.0), ("plgmi vs hardened", "d_loss", 50, 0.5),
        ("plgmi vs hardened", "g_inv", 25, 3.0), ("plgmi vs hardened", "g_inv", 50, 2.0),
        ("kedmi vs hardened", "g_loss", 25, 0.7),
    ]  # fmt: skip


def test_a_target_gan_without_its_loss_history_is_refused_by_name():
    with pytest.raises(ValueError, match="'kedmi' of 'floor'"):
        target_gan_curves([{"model": "floor", "gans": {"kedmi": {"seconds": 1.0}}}])
