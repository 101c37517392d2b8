"""Stage train_prior: the attacker's GAN image prior, trained once on the PUBLIC split (no labels)."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import load_section
from pipeline.data import load_public
from pipeline.io import atomic_write_json
from pipeline.prior import PriorConfig, save_image_grid, save_prior, train_prior
from pipeline.stage_utils import stage_parser
from pipeline.tracking import MlflowSection, stage_run


def main(argv: list[str] | None = None) -> None:
    args = stage_parser(__doc__, "data", "out", "metrics").parse_args(argv)
    cfg = load_section("prior", args.params, PriorConfig)
    experiment = load_section("mlflow", args.params, MlflowSection).experiment
    public = load_public(args.data)  # images only: the attacker has no labels
    with stage_run("train_prior", {"prior": cfg.model_dump()}, experiment) as run:
        run.log_data(args.data, public="training")
        result = train_prior(public.images.numpy(), cfg)
        for epoch, (d, g) in enumerate(zip(result.d_loss, result.g_loss, strict=True), start=1):
            run.log_epoch("prior", epoch, {"d_loss": d, "g_loss": g})
        out = Path(args.out)
        save_prior(out / "prior.pt", result.prior)
        save_image_grid(out / "samples.png", result.prior.sample(100, seed=0))
        run.log_artifact(out / "samples.png")
        report = {"seconds": result.seconds, "d_loss": result.d_loss, "g_loss": result.g_loss, "images": len(public)}
        atomic_write_json(args.metrics, report)
        run.log_metrics({"seconds": result.seconds})
    print(f"train_prior: {cfg.epochs} epochs on {len(public)} public images in {result.seconds:.0f} s")


if __name__ == "__main__":
    main()
