"""Re-derive the gate's ``min_knn_distance`` for the current judge and split.

The threshold is what a *real, unseen* image of a private class looks like to the judge: the mean
over held-out private test images of the squared L2 distance, in the judge's penultimate features,
to the nearest private training image of the same class. A reconstruction closer than that sits
nearer the training set than fresh data does, which points at memorised training images.

    .venv/bin/python bench/knn_threshold.py   # writes reports/bench/knn_threshold.json
"""

from __future__ import annotations

import argparse
import json

from pipeline.checkpoint import load_checkpoint
from pipeline.data import load_labelled
from pipeline.io import atomic_write_json
from pipeline.metrics import judge_features, knn_distance_from_features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--judge", default="models/judge/model.pt")
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--out", default="reports/bench/knn_threshold.json")
    args = parser.parse_args()
    judge, _ = load_checkpoint(args.judge)
    train, test = load_labelled(args.data, "private_train"), load_labelled(args.data, "private_test")
    train_features, test_features = judge_features(judge, train.images), judge_features(judge, test.images)
    distance = knn_distance_from_features(test_features, test.labels, train_features, train.labels)
    report = {"min_knn_distance": round(distance, 2), "exact": distance, "judge": args.judge,
              "test_images": len(test), "train_images": len(train)}  # fmt: skip
    atomic_write_json(args.out, report)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
