"""Stage train_baseline: the undefended target, trained to convergence on the private split."""

from __future__ import annotations

from pipeline.classifier_training import run_classifier_stage


def main(argv: list[str] | None = None) -> dict:
    return run_classifier_stage("train_baseline", "baseline", argv, __doc__)


if __name__ == "__main__":
    main()
