"""``python -m pipeline.profiles NAME [--base params.yaml] [--out params.yaml]``: apply a params profile.

A profile (``profiles/NAME.yaml``) is an overlay deep-merged onto the default params, so it lists
only what differs. The result is validated before it is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from pipeline.config import deep_merge, read_params, validate_params
from pipeline.io import atomic_path

PROFILE_DIR = Path("profiles")


def apply_profile(name: str, base: Path, out: Path, profile_dir: Path = PROFILE_DIR) -> None:
    overlay_path = profile_dir / f"{name}.yaml"
    merged = deep_merge(read_params(base), read_params(overlay_path))
    with atomic_path(out) as tmp:
        tmp.write_text(yaml.safe_dump(merged, sort_keys=False))
        validate_params(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name")
    parser.add_argument("--base", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    apply_profile(args.name, args.base, args.out)


if __name__ == "__main__":
    main()
