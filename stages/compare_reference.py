"""Stage compare_reference: a model that never saw the private data, attacked and gated like a defense.

The same architecture trained from scratch on the attacker's *public* split (``sample_disjoint``:
other images of the private classes). Whatever the suite extracts from it is what any classifier of
these classes gives away without memorising a single private image, so it is the floor that no
defense can go below on this protocol, and the yardstick for the gate's ``max_attack_acc1``.
In ``class_disjoint`` mode the public classes are not the private ones and the reference is skipped.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from pipeline.checkpoint import save_checkpoint
from pipeline.classifier_training import train_classifier
from pipeline.compare.config import SEED_STRIDE, CompareSection
from pipeline.compare.run import evaluate_seed, gate_record, progress, summarise
from pipeline.config import MlflowSection, load_section, read_params
from pipeline.gate import GateSection
from pipeline.io import atomic_write_json, sha256_file
from pipeline.stage_utils import load_part, read_manifest, stage_parser
from pipeline.suite import AttackSection
from pipeline.tracking import stage_run
from stages.compare_setting import baseline_attacks_by_seed, load_inputs, save_reconstructions

NAME = "public_only"


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(
        __doc__, "baseline", "baseline-metrics", "judge", "prior", "data", "out", "report", "baseline-report"
    )
    args = parser.parse_args(argv)
    compare = load_section("compare", args.params, CompareSection)
    if compare.reference is None:
        raise SystemExit(f"{args.params}: compare.reference is not set (model and train of the public-only model)")
    section = compare.reference
    gate = load_section("gate", args.params, GateSection)
    experiment = load_section("mlflow", args.params, MlflowSection).experiment
    manifest = read_manifest(args.data)
    report = {"setting": NAME, "label": "reference: trained on public data only", "kind": "reference"}
    if manifest["mode"] != "sample_disjoint":
        atomic_write_json(args.report, {**report, "skipped": f"split mode {manifest['mode']}: public classes differ"})
        return
    public = load_part(args.data, "public")
    inputs = load_inputs(args)
    baseline_attacks = baseline_attacks_by_seed(args.baseline_report)
    records = []
    with stage_run(f"compare@{NAME}", section.model_dump(), experiment) as run:
        for seed in progress(compare.seeds, NAME):
            seeded = section.model_copy(update={"train": section.train.model_copy(
                update={"seed": section.train.seed + seed * SEED_STRIDE})})  # fmt: skip
            start = time.perf_counter()
            model, _ = train_classifier(seeded, public, inputs.data.test, inputs.baseline.num_classes, desc=NAME)
            train_seconds = time.perf_counter() - start
            attack = AttackSection.model_validate(compare.attack_raw(read_params(args.params)["attack"], seed))
            outcome = evaluate_seed(dataclasses.replace(inputs, baseline=model), None, attack, seed)
            checkpoint = f"{args.out}/seed{seed}.pt"
            save_checkpoint(checkpoint, model, {"compare": {"reference": seeded.model_dump()}})
            outcome.record["defense_report"] = {"defense": "none", "trained_on": "public split only"}
            outcome.record["seconds"]["train"] = train_seconds  # evaluate_seed only copied the trained model
            outcome.record["gate"] = gate_record(
                outcome.record, inputs.baseline_natural_accuracy, gate, baseline_attacks[seed], sha256_file(checkpoint)
            )  # fmt: skip
            records.append(outcome.record)
            if len(records) == 1:  # the first seed's reconstructions feed the side-by-side grids
                save_reconstructions(Path(args.out) / "reconstructions.pt", outcome.attack_results)
        report.update(overrides={}, harden=None, seeds=records, summary=summarise(records))
        atomic_write_json(args.report, report)
        run.log_metrics({k: v["mean"] for k, v in report["summary"].items() if isinstance(v, dict) and "mean" in v})
    summary = report["summary"]
    worst = summary["worst_case_acc1"]
    print(f"compare {NAME}: natural accuracy {summary['natural_accuracy']['mean']:.3f}, "
          f"worst-case Acc@1 {worst['mean']:.2f} ± {worst['std']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
