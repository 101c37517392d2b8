"""Train a classifier from scratch (baseline target and judge share this), and their one stage body."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.checkpoint import save_checkpoint
from pipeline.config import Section, TrainConfig, load_section
from pipeline.data import load_labelled, load_split_manifest
from pipeline.data.parts import LabelledImages
from pipeline.io import atomic_write_json
from pipeline.models import Classifier, ModelConfig, ModelSection, create_model
from pipeline.models.pretrained import initialise_features
from pipeline.seeding import seed_everything
from pipeline.stage_utils import stage_parser, utility_report, write_curve
from pipeline.tracking import MlflowSection, stage_run
from pipeline.train import EpochCallback, fit


class ClassifierStage(Section):
    """The ``baseline`` / ``judge`` sections: an architecture and how to train it."""

    model: ModelSection
    train: TrainConfig


def train_classifier(
    section: ClassifierStage,
    train: LabelledImages,
    test: LabelledImages,
    num_classes: int,
    *,
    on_epoch: EpochCallback | None = None,
    desc: str = "train",
) -> tuple[Classifier, list[dict[str, float]], dict[str, Any] | None]:
    """The trained model, its per-epoch history, and the init checkpoint it started from (None: random)."""
    _, channels, height, _ = train.images.shape
    config = ModelConfig(
        arch=section.model.arch, num_classes=num_classes, in_channels=channels,
        image_size=height, width=section.model.width,
    )  # fmt: skip
    seed_everything(section.train.seed)  # the initialisation is part of what the seed fixes
    model = create_model(config)
    init = initialise_features(model, section.model.init_checkpoint) if section.model.init_checkpoint else None
    history = fit(model, train, section.train, eval_data=test, on_epoch=on_epoch, desc=desc)
    return model, history, init


def run_classifier_stage(stage: str, section_name: str, argv: list[str] | None, description: str) -> dict:
    """The whole of the train_baseline / train_judge stages: train, evaluate, checkpoint, report, log.

    The judge trains on the split's ``judge_train`` part and is scored on ``judge_test``: every class
    it tells apart (in ``class_disjoint`` mode the public classes too, so reconstructions that merely
    look like a public class count as failures), with more images than the target gets.
    """
    args = stage_parser(description, "data", "out", "metrics", "plot").parse_args(argv)
    section = load_section(section_name, args.params, ClassifierStage)
    experiment = load_section("mlflow", args.params, MlflowSection).experiment
    manifest = load_split_manifest(args.data)
    is_judge = section_name == "judge"
    train_part, test_part = ("judge_train", "judge_test") if is_judge else ("private_train", "private_test")
    train, test = load_labelled(args.data, train_part), load_labelled(args.data, test_part)
    num_classes = len(manifest["classes"]) if is_judge else len(manifest["private_classes"])
    with stage_run(stage, section.model_dump(), experiment) as run:
        run.log_data(args.data, **{train_part: "training", test_part: "evaluation"})
        model, history, init = train_classifier(
            section, train, test, num_classes, desc=stage, on_epoch=lambda e, m: run.log_epoch(stage, e, m)
        )
        report = {**utility_report(model, train, test), "epochs": section.train.epochs, "train_part": train_part,
                  "test_part": test_part, "num_classes": num_classes, "train_images": len(train)}  # fmt: skip
        params = {section_name: section.model_dump()}
        if init is not None:
            report["init_checkpoint"] = params["init_checkpoint"] = init
            run.set_tag("init_checkpoint.sha256", init["sha256"])
        checkpoint = Path(args.out) / "model.pt"
        save_checkpoint(checkpoint, model, params)
        atomic_write_json(args.metrics, report)
        write_curve(args.plot, history)
        run.log_metrics(report)
        run.log_artifact(args.metrics)
        run.log_artifact(checkpoint, "checkpoint")
    print(f"{stage}: natural accuracy {report['natural_accuracy']:.4f}")
    return report
