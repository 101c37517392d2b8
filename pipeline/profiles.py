"""Profiles: named overlays of params.yaml that DVC applies as ``dvc exp run --set-param`` overrides.

A profile (``profiles/NAME.yaml``) lists only what differs from the defaults; several are merged left
to right (``smoke smoke_release``). Nothing here rewrites params.yaml: a profile becomes one
``-S key=value`` per changed leaf, so ``dvc exp run`` applies it in the experiment's workspace (DVC
keeps the comments; it re-formats lists and expands anchors, treeverse/dvc#8720), ``dvc params diff``
shows it key by key and ``dvc exp show`` puts profiles side by side. Before they are used the
overrides are applied with DVC's own code to a copy, read back as the stages read params.yaml and
compared with the defaults deep-merged with the profile, then validated.

    python -m pipeline.driver --profile smoke     # the pipeline as an experiment named after the profile
    python -m pipeline.profiles smoke             # the checked `dvc exp run` command, one -S per line
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline.config import DEFAULT_PARAMS, deep_merge, read_params
from pipeline.io import atomic_path
from pipeline.params_schema import validate_params

PROFILE_DIR = Path("profiles")


def profile_overlay(names: list[str], profile_dir: Path = PROFILE_DIR) -> dict[str, Any]:
    """The profiles ``names`` deep-merged left to right (what they change, not the full params)."""
    if not names:
        raise ValueError("no profile named")
    overlay: dict[str, Any] = {}
    for name in names:
        path = Path(profile_dir) / f"{name}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in Path(profile_dir).glob("*.yaml"))
            raise ValueError(f"{path}: no such profile; known: {known}")
        overlay = deep_merge(overlay, read_params(path))
    return overlay


def _hydra_value(value: Any) -> str:
    """``value`` in Hydra's override grammar (what ``--set-param`` parses), quoting strings only when needed."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_hydra_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        from hydra.core.override_parser.overrides_parser import OverridesParser

        try:
            if "${" not in value and OverridesParser.create().parse_override(f"k={value}").value() == value:
                return value
        except Exception:  # noqa: BLE001 - any parse failure means "quote it"
            pass
        escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("${", "\\${")  # ${: interpolation
        return f"'{escaped}'"
    raise TypeError(f"cannot express {type(value).__name__} {value!r} as a --set-param value")


def set_param_overrides(overlay: dict[str, Any], base: dict[str, Any], prefix: str = "") -> list[str]:
    """One Hydra override per leaf of ``overlay``; ``+key`` where ``base`` lacks the key (DVC's rule)."""
    overrides = []
    for key, value in overlay.items():
        name = f"{prefix}{key}"
        present = isinstance(base, dict) and key in base
        if isinstance(value, dict) and value and (not present or isinstance(base[key], dict)):
            overrides += set_param_overrides(value, base[key] if present else {}, f"{name}.")
            continue
        if present and _differences(base[key], value) == []:
            continue  # the profile repeats a default: not part of the diff
        sign = "" if present else "+"
        overrides.append(f"{sign}{name}={_hydra_value(value)}")
    return overrides


def _differences(got: Any, want: Any, prefix: str = "") -> list[str]:
    if isinstance(got, dict) and isinstance(want, dict):
        return [d for k in sorted(set(got) | set(want), key=str)
                for d in _differences(got.get(k, "<missing>"), want.get(k, "<missing>"), f"{prefix}{k}.")]  # fmt: skip
    if got == want and type(got) is type(want):
        return []
    return [f"{prefix.rstrip('.')}: {got!r} instead of {want!r}"]


def apply_overlay(params: Path, overlay: dict[str, Any], out: Path | None = None) -> list[str]:
    """The ``--set-param`` overrides that turn ``params`` into ``params`` deep-merged with ``overlay``.

    They are applied with DVC's own code (``dvc.utils.hydra.apply_overrides``, what ``dvc exp run -S``
    runs) to a copy of ``params``, read back as the stages read params and compared with the deep
    merge, then validated; a difference raises naming the keys. With ``out`` the result is also
    written there (for throwaway copies of the repo, such as the end-to-end tests').
    """
    from dvc.exceptions import DvcException
    from dvc.utils.hydra import apply_overrides

    base = read_params(params)
    overrides = set_param_overrides(overlay, base)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "params.yaml"
        shutil.copyfile(params, copy)
        try:
            apply_overrides(copy, overrides)
        except DvcException as err:
            raise ValueError(f"{params}: DVC refuses the overrides {overrides}: {err} ({err.__cause__})") from None
        wrong = _differences(read_params(copy), deep_merge(base, overlay))
        if wrong:
            raise ValueError(f"{params}: --set-param would not give the profile's params:\n  " + "\n  ".join(wrong))
        try:
            validate_params(copy)
        except ValueError as err:
            raise ValueError(str(err).replace(str(copy), f"{params} with the overrides")) from None
        if out is not None:
            with atomic_path(out) as dest:
                shutil.copyfile(copy, dest)
    return overrides


def experiment_name(names: list[str]) -> str:
    """The profiles and the time: ``smoke+smoke_release-20261203-0930`` (DVC refuses a name used before)."""
    return f"{'+'.join(names)}-{time.strftime('%Y%m%d-%H%M%S')}"


def set_param_args(names: list[str], params: Path = DEFAULT_PARAMS, profile_dir: Path = PROFILE_DIR) -> list[str]:
    """``["-S", override, ...]`` for ``dvc exp run``: the profiles ``names`` over ``params``, checked."""
    overrides = apply_overlay(params, profile_overlay(names, profile_dir))
    return [arg for override in overrides for arg in ("-S", override)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="+", help="profiles/NAME.yaml, merged in order")
    parser.add_argument("--params", type=Path, default=DEFAULT_PARAMS, help="the defaults (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        overrides = set_param_args(args.name, args.params)[1::2]
    except ValueError as err:
        raise SystemExit(str(err)) from None
    lines = [f"dvc exp run --name {shlex.quote(experiment_name(args.name))}"]
    lines += [f"  -S {shlex.quote(override)}" for override in overrides]
    print(" \\\n".join(lines))


if __name__ == "__main__":
    main()
