"""Stage attack@<model>: the whole attack suite against one model, judged by the independent judge.

The GAN attacks get the generic public prior or the GANs trained against this model (``target_gan@<model>``).
Under ``torchrun --nproc_per_node N`` the N processes share the suite's (attack, seed) runs, or every
run's classes with ``attack.shard: classes``, and rank 0 writes the report a single process would
(``pipeline.suite.run_suite``).
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.checkpoint import load_checkpoint
from pipeline.config import load_section
from pipeline.data import load_labelled, load_public, load_split_manifest
from pipeline.defenses import checkpoint_knowledge
from pipeline.io import atomic_write_json, sha256_file
from pipeline.plots import reconstruction_grid
from pipeline.prior import load_prior
from pipeline.runtime import current_runtime
from pipeline.stage_utils import stage_parser
from pipeline.suite import AttackSection, PrivateReference, run_suite
from pipeline.target_gan import load_target_gans
from pipeline.tracking import MlflowSection, stage_run


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "name", "model", "judge", "prior", "target-gans", "data", "report", "grids")
    args = parser.parse_args(argv)
    cfg = load_section("attack", args.params, AttackSection)
    experiment = load_section("mlflow", args.params, MlflowSection).experiment
    model, meta = load_checkpoint(args.model)
    judge, _ = load_checkpoint(args.judge)
    current_runtime().prepare(judge)  # scoring runs where the attacks do
    priors = {"generic": load_prior(args.prior)[0], **load_target_gans(args.target_gans, cfg.prior_kinds())}
    train, test = load_labelled(args.data, "private_train"), load_labelled(args.data, "private_test")
    public = load_public(args.data)  # images only: the attacker has no labels
    class_names = [c["name"] for c in load_split_manifest(args.data)["classes"]]
    knowledge = checkpoint_knowledge(meta["params"])  # what the defense declares (Kerckhoffs)
    with stage_run(f"attack@{args.name}", {"attack": cfg.model_dump(), "model": args.name}, experiment) as run:
        run.log_data(args.data, private_train="evaluation", private_test="evaluation", public="attack")
        report, results = run_suite(
            model, judge, priors, public.images, PrivateReference.build(judge, train, test), cfg, knowledge
        )
        if report is None:  # a torchrun worker: its runs went to rank 0
            return
        report = {"model": args.name, "checkpoint_sha256": sha256_file(args.model),
                  "defense_knowledge": knowledge.attack_params(), **report}  # fmt: skip
        grids = Path(args.grids)
        for name, result in results.items():
            acc = report["attacks"][name]["acc1"]
            reconstruction_grid(
                grids / f"{name}.png", result.images, result.labels, train.images, train.labels, class_names,
                title=f"{args.name} — {name}: judge Acc@1 {acc['mean']:.2f} ± {acc['std']:.2f} (n={acc['n']} seeds)",
                per_class=cfg.grid_samples_per_class,
            )  # fmt: skip
        atomic_write_json(args.report, report)
        for name, row in report["attacks"].items():
            run.log_metrics({f"{name}.{m}": v["mean"] for m, v in row.items() if isinstance(v, dict) and "mean" in v})
        run.log_artifact(args.report)
        run.log_artifact(grids, "grids")
    print(json.dumps({n: round(r["acc1"]["mean"], 3) for n, r in report["attacks"].items()}))


if __name__ == "__main__":
    main()
