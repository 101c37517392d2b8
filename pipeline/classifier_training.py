"""Train a classifier from scratch (baseline target and judge share this)."""

from __future__ import annotations

from pipeline.config import ClassifierStage
from pipeline.models import Classifier, ModelConfig, create_model
from pipeline.seeding import seed_everything
from pipeline.train import EpochCallback, LabelledImages, fit


def train_classifier(
    section: ClassifierStage,
    train: LabelledImages,
    test: LabelledImages,
    num_classes: int,
    *,
    on_epoch: EpochCallback | None = None,
    desc: str = "train",
) -> tuple[Classifier, list[dict[str, float]]]:
    _, channels, height, _ = train.images.shape
    config = ModelConfig(
        arch=section.model.arch, num_classes=num_classes, in_channels=channels,
        image_size=height, width=section.model.width,
    )  # fmt: skip
    seed_everything(section.train.seed)  # the initialisation is part of what the seed fixes
    model = create_model(config)
    history = fit(model, train, section.train, eval_data=test, on_epoch=on_epoch, desc=desc)
    return model, history


def run_classifier_stage(stage: str, section_name: str, argv: list[str] | None, description: str) -> dict:
    """The whole of the train_baseline / train_judge stages: train, evaluate, checkpoint, report, log.

    The judge in ``class_disjoint`` mode also learns the public classes (their labels follow the
    private ones), so reconstructions that merely look like a public class count as failures.
    """
    from pathlib import Path

    import torch

    from pipeline.checkpoint import save_checkpoint
    from pipeline.config import MlflowSection, load_section
    from pipeline.io import atomic_write_json
    from pipeline.stage_utils import load_part, read_manifest, stage_parser, utility_report, write_curve
    from pipeline.tracking import stage_run

    args = stage_parser(description, "data", "out", "metrics", "plot").parse_args(argv)
    section = load_section(section_name, args.params, ClassifierStage)
    experiment = load_section("mlflow", args.params, MlflowSection).experiment
    manifest = read_manifest(args.data)
    train, test = load_part(args.data, "private_train"), load_part(args.data, "private_test")
    num_classes = len(manifest["private_classes"])
    learns_public = section_name == "judge" and manifest["mode"] == "class_disjoint"
    if learns_public:
        public = load_part(args.data, "public")
        train = LabelledImages(torch.cat([train.images, public.images]), torch.cat([train.labels, public.labels]))
        num_classes += len(manifest["public_classes"])
    with stage_run(stage, section.model_dump(), experiment) as run:
        model, history = train_classifier(
            section, train, test, num_classes, desc=stage, on_epoch=lambda e, m: run.log_epoch(stage, e, m)
        )
        report = {**utility_report(model, train, test), "epochs": section.train.epochs, "learns_public": learns_public}
        checkpoint = Path(args.out) / "model.pt"
        save_checkpoint(checkpoint, model, {section_name: section.model_dump()})
        atomic_write_json(args.metrics, report)
        write_curve(args.plot, history)
        run.log_metrics(report)
        run.log_artifact(args.metrics)
        run.log_artifact(checkpoint, "checkpoint")
    print(f"{stage}: natural accuracy {report['natural_accuracy']:.4f}")
    return report
