"""Register the exported model in MLflow and move aliases: ``candidate`` always, ``champion`` on merit.

Aliases only (registry stages are deprecated). ``champion`` moves when the gate approved AND the
candidate is no worse than the current champion on natural accuracy (higher is better) and on
worst-case attack Acc@1 (lower is better: it is the attacker's success). The comparison is
written to the report whichever way it goes.

The registered version is self-describing: its model carries the signature and a synthetic input
example, and, next to the approved checkpoint in ``extra_files``, the gate report and the model card;
its source run is the ``register`` stage's run, a child of the pipeline run (``pipeline_run_id`` tag
and the version's description name both).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.export.gate import ApprovedGate, GateRefusal, require_approved
from pipeline.export.onnx_export import read_metadata
from pipeline.export.provenance import file_sha256_or_missing, from_metadata_props
from pipeline.io import atomic_write_json
from pipeline.registry_mlflow.config import RegisterSection
from pipeline.tracking import PARENT_RUN_ENV, git_commit, stage_run

METRIC_TAGS = ("natural_accuracy", "worst_case_acc1")


def _tag_float(tags: dict[str, str], key: str) -> float | None:
    try:
        return float(tags[key])
    except (KeyError, ValueError):
        return None


def compare_to_champion(
    candidate: dict[str, float | None],
    champion: dict[str, float | None] | None,
    *,
    gate_verdict: str,
    natural_tolerance: float = 0.0,
    worst_case_tolerance: float = 0.0,
) -> dict[str, Any]:
    """Decide whether the candidate becomes champion; every reason against is listed."""
    reasons = []
    if gate_verdict != "approved":
        reasons.append(f"gate verdict is {gate_verdict!r}")
    missing = [k for k in METRIC_TAGS if candidate.get(k) is None]
    if missing:
        reasons.append(f"candidate lacks {missing}")
    if champion is not None and not missing:
        champ_missing = [k for k in METRIC_TAGS if champion.get(k) is None]
        if champ_missing:
            reasons.append(f"current champion lacks {champ_missing}: cannot show no regression")
        else:
            if candidate["natural_accuracy"] < champion["natural_accuracy"] - natural_tolerance:
                reasons.append(
                    f"natural_accuracy {candidate['natural_accuracy']:.4f} < champion "
                    f"{champion['natural_accuracy']:.4f} - tolerance {natural_tolerance}"
                )
            if candidate["worst_case_acc1"] > champion["worst_case_acc1"] + worst_case_tolerance:
                reasons.append(
                    f"worst_case_acc1 {candidate['worst_case_acc1']:.4f} > champion "
                    f"{champion['worst_case_acc1']:.4f} + tolerance {worst_case_tolerance} (attack does better)"
                )
    return {"promote": not reasons, "reasons": reasons, "candidate": candidate, "champion": champion}


def _version_tags(
    approved: ApprovedGate, provenance: dict[str, str], dvc_lock: str | os.PathLike, onnx_path: Path
) -> dict[str, str]:
    tags = {
        "gate_verdict": approved.verdict,
        "gate_report_sha256": approved.report_sha256,
        "natural_accuracy": str(approved.natural_accuracy),
        "worst_case_acc1": str(approved.worst_case_acc1),
        "deciding_attack": str(approved.report.get("deciding_attack")),
        "checkpoint_sha256": approved.checkpoint_sha256,
        "onnx_sha256": file_sha256_or_missing(onnx_path),
        "git_commit": git_commit(),
        "dvc_lock_sha256": file_sha256_or_missing(dvc_lock),
    }
    for key in ("defense", "params_sha256", "library_versions"):
        if key in provenance:
            tags[key] = provenance[key]
    if os.environ.get(PARENT_RUN_ENV):
        tags["pipeline_run_id"] = os.environ[PARENT_RUN_ENV]
    return tags


def _description(run_id: str, tags: dict[str, str]) -> str:
    """The version's provenance in one paragraph of the registry page."""
    parent = tags.get("pipeline_run_id")
    made_by = f"pipeline run {parent} (its register stage, run {run_id})" if parent else f"run {run_id}"
    return (
        f"Registered by {made_by} at git {tags['git_commit'][:12]}. Gate {tags['gate_verdict']} "
        f"(report sha256 {tags['gate_report_sha256'][:12]}); natural accuracy {tags['natural_accuracy']}, "
        f"worst-case attack Acc@1 {tags['worst_case_acc1']}. Gate report and model card are in the "
        "model's extra_files."
    )


def _load_onnx(onnx_path: Path):  # noqa: ANN202 - onnx.ModelProto
    import onnx

    return onnx.load(os.fspath(onnx_path))


def _signature_example(proto) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001 - onnx.ModelProto
    """Synthetic (input, logits) for the signature: never log private images into the registry."""
    graph = proto.graph

    def dims(value_info) -> list[int]:  # noqa: ANN001 - onnx.ValueInfoProto
        return [d.dim_value for d in value_info.type.tensor_type.shape.dim[1:]]  # without the batch dim

    example = np.random.default_rng(0).random((1, *dims(graph.input[0])), dtype=np.float32)
    return example, np.zeros((1, *dims(graph.output[0])), np.float32)


def register_release(
    cfg: RegisterSection,
    *,
    experiment: str,
    checkpoint: str | os.PathLike,
    gate: str | os.PathLike,
    onnx_path: str | os.PathLike,
    report: str | os.PathLike,
    extra_artifacts: tuple[str | os.PathLike, ...] = (),
    dvc_lock: str | os.PathLike = "dvc.lock",
    model_card: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Log + register the ONNX model, tag the version, set ``candidate``, maybe move ``champion``.

    Raises:
        GateRefusal: the gate does not approve this checkpoint, the ONNX file is not its export, or
            a model card was asked for and is missing.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.models import infer_signature

    approved = require_approved(gate, checkpoint)
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise GateRefusal(f"{onnx_path}: exported model not found; run the export stage first")
    if model_card is not None and not Path(model_card).is_file():
        raise GateRefusal(f"{model_card}: model card not found; run the model_card stage first")
    provenance = from_metadata_props(read_metadata(onnx_path))
    if provenance.get("checkpoint_sha256") != approved.checkpoint_sha256:
        raise GateRefusal(
            f"{onnx_path} was exported from checkpoint sha256 {provenance.get('checkpoint_sha256')!r}, "
            f"not {approved.checkpoint_sha256} ({checkpoint}); re-run the export stage"
        )

    tags = _version_tags(approved, provenance, dvc_lock, onnx_path)
    proto = _load_onnx(onnx_path)
    example, logits = _signature_example(proto)
    with (
        tempfile.TemporaryDirectory(prefix="calor-register-") as tmp,
        stage_run("register", cfg.model_dump(), experiment) as run,
    ):
        # Log the checkpoint bytes the gate approved (hashed in require_approved), not the path reopened.
        approved_checkpoint = Path(tmp) / Path(checkpoint).name
        approved_checkpoint.write_bytes(approved.checkpoint_bytes)
        documents = [os.fspath(p) for p in (gate, model_card) if p is not None]
        info = mlflow.onnx.log_model(
            onnx_model=proto, name="model", registered_model_name=cfg.model_name,
            signature=infer_signature(example, logits), input_example=example, save_as_external_data=False,
            extra_files=[os.fspath(approved_checkpoint), *documents], metadata=provenance,
        )  # fmt: skip
        for path in (gate, model_card, *extra_artifacts):
            if path is None:
                continue
            if Path(path).is_file():
                run.log_artifact(path, "reports")
        mlflow.set_tags({f"release.{k}": v for k, v in tags.items()})
        run.log_metrics({k: v for k in METRIC_TAGS if (v := _tag_float(tags, k)) is not None})
    client = MlflowClient()
    version = str(info.registered_model_version)
    for key, value in tags.items():
        client.set_model_version_tag(cfg.model_name, version, key, value)
    client.update_model_version(cfg.model_name, version, description=_description(run.run_id, tags))
    client.set_registered_model_alias(cfg.model_name, cfg.candidate_alias, version)

    try:
        current = client.get_model_version_by_alias(cfg.model_name, cfg.champion_alias)
    except MlflowException:
        current = None
    champion = None if current is None else {k: _tag_float(current.tags, k) for k in METRIC_TAGS}
    decision = compare_to_champion(
        {k: _tag_float(tags, k) for k in METRIC_TAGS}, champion, gate_verdict=approved.verdict,
        natural_tolerance=cfg.natural_accuracy_tolerance, worst_case_tolerance=cfg.worst_case_acc1_tolerance,
    )  # fmt: skip
    if decision["promote"]:
        client.set_registered_model_alias(cfg.model_name, cfg.champion_alias, version)
    previous = str(current.version) if current is not None else None
    result = {
        "tracking_uri": mlflow.get_tracking_uri(),
        "model_name": cfg.model_name,
        "version": version,
        "run_id": run.run_id,
        "model_uri": f"models:/{cfg.model_name}/{version}",
        "aliases": {cfg.candidate_alias: version, cfg.champion_alias: version if decision["promote"] else previous},
        "previous_champion_version": previous,
        "champion_moved": decision["promote"],
        "comparison": decision,
        "tags": tags,
    }
    atomic_write_json(report, result)
    return result
