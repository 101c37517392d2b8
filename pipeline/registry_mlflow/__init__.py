"""MLflow model registry: register the exported model, tag it, move aliases on merit."""

from pipeline.registry_mlflow.promote import compare_to_champion, register_release

__all__ = ["compare_to_champion", "register_release"]
