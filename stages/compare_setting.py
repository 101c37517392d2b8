"""Stage compare@<setting> (and compare_baseline): one comparison setting over every compare seed.

Fine-tunes the trained baseline with the setting's defense once per seed, attacks each result with
the full suite (one attack seed per compare seed, the same for every setting), and gates it against
the baseline's report for the same seed. ``--set key=value`` overrides the setting's harden block
(the auto-harden sweep uses it for CALoR's r and b); ``--name baseline`` attacks the baseline itself;
``--name harden`` takes the shipped ``harden`` section of params.yaml as the setting; ``--seeds``
replaces ``compare.seeds``.
"""

from __future__ import annotations

from pipeline.compare.config import CompareSection, CompareSetting, parse_overrides
from pipeline.compare.inputs import row_inputs
from pipeline.compare.rows import floor_row
from pipeline.compare.run import harden, write_report
from pipeline.config import load_section, read_params
from pipeline.floor import FloorSection
from pipeline.stage_utils import stage_parser
from pipeline.tracking import MlflowSection, stage_run

BASELINE, SHIPPED, FLOOR = "baseline", "harden", "floor"


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "name", "baseline", "baseline-metrics", "judge", "prior", "data", "out", "report")
    parser.add_argument("--baseline-report", help="the baseline's compare report: gate each seed against it")
    parser.add_argument("--floor-report", help="the floor's compare report: the leakage floor per seed")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the setting")
    parser.add_argument("--label", help="label in the report (default: the setting's)")
    parser.add_argument("--seeds", type=int, nargs="+", help="compare seeds (default: compare.seeds)")
    args = parser.parse_args(argv)
    compare = load_section("compare", args.params, CompareSection)
    experiment = load_section("mlflow", args.params, MlflowSection).experiment
    if args.name == BASELINE:
        setting, label, kind = None, "baseline (undefended)", "baseline"
    elif args.name == FLOOR:
        setting, label, kind = None, "floor: knows nothing of the private classes", "floor"
    elif args.name == SHIPPED:
        shipped = CompareSetting(label="shipped harden section", harden=read_params(args.params)["harden"])
        setting, label, kind = shipped, args.label or shipped.label, shipped.kind
    elif args.name in compare.settings:
        setting = compare.settings[args.name]
        label, kind = args.label or setting.label, setting.kind
    else:
        raise SystemExit(f"{args.params}: compare.settings has no {args.name!r}; known: {sorted(compare.settings)}")
    overrides = parse_overrides(args.set)
    inputs, loop = row_inputs(args.params, compare, args)

    def train(seed: int):
        if args.name == FLOOR:
            return floor_row(inputs, load_section("floor", args.params, FloorSection), seed, args.data)
        return harden(inputs, setting.harden_section(seed, overrides) if setting else None)

    with stage_run(f"compare@{args.name}", {"setting": args.name, "overrides": overrides}, experiment) as run:
        run.log_data(args.data, private_train="training", private_test="evaluation", public="attack")
        records = loop.run(args.seeds or compare.seeds, train, args.name, run)
        report = {
            "setting": args.name, "label": label, "kind": kind, "overrides": overrides,
            "harden": setting.harden_section(0, overrides).model_dump() if setting else None,
        }  # fmt: skip
        write_report(args.report, report, records, run)


if __name__ == "__main__":
    main()
