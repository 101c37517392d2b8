"""Stage train_judge: the independent evaluation model (other architecture, other seed)."""

from __future__ import annotations

from pipeline.classifier_training import run_classifier_stage


def main(argv: list[str] | None = None) -> dict:
    return run_classifier_stage("train_judge", "judge", argv, __doc__)


if __name__ == "__main__":
    main()
