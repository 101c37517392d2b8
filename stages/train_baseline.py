"""Stage train_baseline: the undefended target, trained to convergence on the private split."""

from pipeline.classifier_training import run_classifier_stage

if __name__ == "__main__":
    run_classifier_stage("train_baseline", "baseline", None, __doc__)
