"""``python -m pipeline.profiles NAME [NAME ...] [--base params.yaml] [--out params.yaml]``: apply profiles.

A profile (``profiles/NAME.yaml``) is an overlay deep-merged onto the default params, so it lists
only what differs; several are applied left to right (``smoke smoke_release``). The result is
validated before it is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from pipeline.config import deep_merge, read_params
from pipeline.io import atomic_path
from pipeline.params_schema import validate_params

PROFILE_DIR = Path("profiles")


def apply_profile(name: str | list[str], base: Path, out: Path, profile_dir: Path = PROFILE_DIR) -> None:
    merged = read_params(base)
    for each in [name] if isinstance(name, str) else name:
        merged = deep_merge(merged, read_params(profile_dir / f"{each}.yaml"))
    with atomic_path(out) as tmp:
        tmp.write_text(yaml.safe_dump(merged, sort_keys=False))
        validate_params(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", nargs="+", help="profiles/NAME.yaml, applied in order")
    parser.add_argument("--base", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    apply_profile(args.name, args.base, args.out)


if __name__ == "__main__":
    main()
