"""Stage compare_reference: a model that never saw the private data, attacked and gated like a defense.

The same architecture trained from scratch on the attacker's *public* split (``sample_disjoint``:
other images of the private classes). Whatever the suite extracts from it is what any classifier of
these classes gives away without memorising a single private image, so it is the floor that no
defense can go below on this protocol, and the yardstick for the gate's ``max_attack_acc1``.
In ``class_disjoint`` mode the public classes are not the private ones and the reference is skipped.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.compare.config import CompareSection
from pipeline.compare.inputs import row_inputs
from pipeline.compare.rows import REFERENCE, reference_row
from pipeline.compare.run import write_report
from pipeline.config import load_section
from pipeline.data import load_labelled, load_split_manifest
from pipeline.io import atomic_write_json, atomic_write_text
from pipeline.stage_utils import stage_parser
from pipeline.tracking import MlflowSection, stage_run


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(
        __doc__,
        "baseline",
        "baseline-metrics",
        "judge",
        "prior",
        "data",
        "out",
        "report",
        "baseline-report",
        "floor-report",
    )
    args = parser.parse_args(argv)
    compare = load_section("compare", args.params, CompareSection)
    if compare.reference is None:
        raise SystemExit(f"{args.params}: compare.reference is not set (model and train of the public-only model)")
    section = compare.reference
    experiment = load_section("mlflow", args.params, MlflowSection).experiment
    manifest = load_split_manifest(args.data)
    report = {"setting": REFERENCE, "label": "reference: trained on public data only", "kind": "reference"}
    if manifest["mode"] != "sample_disjoint":
        reason = f"split mode {manifest['mode']}: public classes are not the private ones (the floor row stands in)"
        Path(args.out).mkdir(parents=True, exist_ok=True)  # DVC's declared output exists, holding only the reason
        atomic_write_text(Path(args.out) / "SKIPPED.txt", reason + "\n")
        atomic_write_json(args.report, {**report, "skipped": reason})
        return
    public = load_labelled(args.data, "public")  # the reference is trained on the labelled public split
    inputs, loop = row_inputs(args.params, compare, args)
    with stage_run(f"compare@{REFERENCE}", section.model_dump(), experiment) as run:
        run.log_data(args.data, public="training", private_train="evaluation", private_test="evaluation")
        records = loop.run(compare.seeds, lambda seed: reference_row(inputs, section, seed, public), REFERENCE, run)
        write_report(args.report, {**report, "overrides": {}, "harden": None}, records, run)


if __name__ == "__main__":
    main()
