"""Stage target_gan@<model>: the attacker's GANs trained against one model (PLG-MI's cGAN, KED-MI's GAN).

Both depend on the attacked model (its pseudo-labels / soft labels of the public images), so each
attacked model — baseline, hardened, floor — gets its own; both warm-start from the generic prior.
Only the kinds the attack suite uses are trained.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.checkpoint import load_checkpoint
from pipeline.config import load_section
from pipeline.data import load_public
from pipeline.io import atomic_write_json
from pipeline.prior import load_prior
from pipeline.stage_utils import stage_parser
from pipeline.suite import AttackSection
from pipeline.target_gan import TARGET_GANS, TargetGANSection, save_target_gan, train_one
from pipeline.tracking import MlflowSection, stage_run

LOG_EVERY = 50  # iterations per logged point: per-iteration GAN losses are noise


def chunk_means(values: list[float], size: int) -> list[float]:
    return [sum(chunk) / len(chunk) for chunk in (values[i : i + size] for i in range(0, len(values), size))]


def main(argv: list[str] | None = None) -> None:
    args = stage_parser(__doc__, "name", "model", "prior", "data", "out", "metrics").parse_args(argv)
    section = load_section("target_gan", args.params, TargetGANSection)
    kinds = sorted(load_section("attack", args.params, AttackSection).prior_kinds() & set(TARGET_GANS.names()))
    experiment = load_section("mlflow", args.params, MlflowSection).experiment
    model, _ = load_checkpoint(args.model)
    generic, _ = load_prior(args.prior)
    public = load_public(args.data)  # images only: the attacker has no labels
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"model": args.name, "gans": {}}
    with stage_run(f"target_gan@{args.name}", {"target_gan": section.model_dump(), "kinds": kinds}, experiment) as run:
        run.log_data(args.data, public="training")
        for kind in kinds:
            result = train_one(kind, model, public.images, section, generic)
            save_target_gan(out / f"{kind}.pt", result.prior, {"model": args.name})
            curves = {name: chunk_means(values, LOG_EVERY) for name, values in result.history.items()}
            report["gans"][kind] = {"seconds": result.seconds, "info": result.info,
                                    f"history_mean_per_{LOG_EVERY}_iterations": curves}  # fmt: skip
            for i, row in enumerate(zip(*curves.values(), strict=True)):
                run.log_epoch(kind, (i + 1) * LOG_EVERY, dict(zip(curves, row, strict=True)))
            run.log_metrics({f"{kind}.seconds": result.seconds})
        atomic_write_json(args.metrics, report)
        run.log_artifact(args.metrics)
    print(f"target_gan@{args.name}: " + ", ".join(f"{k} {v['seconds']:.0f} s" for k, v in report["gans"].items()))


if __name__ == "__main__":
    main()
