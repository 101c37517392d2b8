"""Stage prepare: real data → the private/public model-inversion split plus its manifest."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import load_section
from pipeline.data import PART_NAMES, DataSection, SplitSection
from pipeline.prepare import prepare_split
from pipeline.stage_utils import stage_parser
from pipeline.tracking import MlflowSection, stage_run


def main(argv: list[str] | None = None) -> None:
    args = stage_parser(__doc__, "out").parse_args(argv)
    data = load_section("data", args.params, DataSection)
    split = load_section("split", args.params, SplitSection)
    experiment = load_section("mlflow", args.params, MlflowSection).experiment
    with stage_run("prepare", {"data": data.model_dump(), "split": split.model_dump()}, experiment) as run:
        mi_split = prepare_split(data, split, args.out)
        run.log_data(args.out, sources="source")  # the raw files the split was cut from
        counts = {name: len(mi_split.part(name).labels) for name in PART_NAMES}
        run.log_metrics(counts, prefix="count.")
        run.log_artifact(Path(args.out) / "manifest.json")
    print(f"prepare ({mi_split.mode}): {counts}")


if __name__ == "__main__":
    main()
