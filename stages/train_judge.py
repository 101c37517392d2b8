"""Stage train_judge: the independent evaluation model (other architecture, other seed)."""

from pipeline.classifier_training import run_classifier_stage

if __name__ == "__main__":
    run_classifier_stage("train_judge", "judge", None, __doc__)
