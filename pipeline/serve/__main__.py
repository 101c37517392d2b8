"""``python -m pipeline.serve --model models:/calor-classifier@champion``: a KServe v2 HTTP server.

--model takes a registry URI (``models:/<name>@<alias>``), the export directory (``models/export``)
or its ``.onnx``: what the release gate approved. A raw ``.pt`` checkpoint, or an ONNX file without
an approved gate record, needs ``--unsafe-ungated``. The backend is the first that is available
and loads, in the order TensorRT → ONNX Runtime CUDA → PyTorch CUDA → ONNX Runtime CPU
(``--backend`` forces one). Binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from pipeline.config import load_section
from pipeline.export.ort_runtime import OrtOptions
from pipeline.serve.backends import BackendOptions, list_backends, select_backend
from pipeline.serve.config import ServeSection
from pipeline.serve.source import resolve_source

log = logging.getLogger("pipeline.serve")

# CLI flag -> ServeSection field; a flag left unset keeps the params/default value.
OVERRIDES = {"host": "host", "port": "port", "max_batch": "max_batch", "max_wait_ms": "max_wait_ms",
             "max_body_bytes": "max_body_bytes", "model_name": "model_name", "max_inflight": "max_inflight",
             "body_timeout_s": "body_timeout_s", "parse_workers": "parse_workers", "docs": "docs"}  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument(
        "--model",
        required=True,
        help="models:/<name>@<alias>, an export directory or its .onnx (a .pt needs --unsafe-ungated)",
    )
    parser.add_argument("--unsafe-ungated", action="store_true",
                        help="serve a model the release gate did not approve (a raw .pt, an ONNX without its gate "
                             "record); for experiments, never for a release")  # fmt: skip
    parser.add_argument("--params", help="params.yaml to read the 'serve' section from (flags override it)")
    parser.add_argument("--host", help="default 127.0.0.1")
    parser.add_argument("--port", type=int)
    parser.add_argument("--max-batch", type=int)
    parser.add_argument("--max-wait-ms", type=float)
    parser.add_argument("--max-body-bytes", type=int)
    parser.add_argument("--model-name", help="the name clients use in /v2/models/<name>")
    parser.add_argument("--max-inflight", type=int, help="infer requests admitted at once; more get 503")
    parser.add_argument("--body-timeout-s", type=float, help="seconds a client has to send its body (else 408)")
    parser.add_argument("--parse-workers", type=int, help="processes parsing large bodies (0: on the event loop)")
    parser.add_argument("--docs", action="store_true", default=None, help="serve /docs and /openapi.json")
    parser.add_argument("--backend", choices=list_backends(), help="force one backend (no fallback)")
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def serve_config(args: argparse.Namespace) -> ServeSection:
    base: dict[str, Any] = load_section("serve", args.params, ServeSection).model_dump() if args.params else {}
    flags = {field: getattr(args, flag) for flag, field in OVERRIDES.items() if getattr(args, flag) is not None}
    return ServeSection(**{**base, **flags})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = serve_config(args)
    import uvicorn

    from pipeline.serve.app import create_app

    source = None
    try:
        source = resolve_source(args.model, unsafe_ungated=args.unsafe_ungated)
        # No spinning: the event loop shares the cores with the inference thread.
        options = BackendOptions(
            max_batch=cfg.max_batch,
            ort=OrtOptions(allow_spinning=False),
            tensorrt_precision=cfg.tensorrt_precision,
            engine_cache_dir=cfg.engine_cache_dir,
        )
        backend, attempts = select_backend(source, options, forced=args.backend)
    except (FileNotFoundError, ValueError, LookupError, RuntimeError, ImportError) as err:
        if source is not None:
            source.close()
        print(f"serve: {err}", file=sys.stderr)
        return 1
    if not source.gated:
        log.warning("serving %s WITHOUT an approved gate record (--unsafe-ungated): not a release", args.model)
    for a in attempts:
        log.info("backend %-17s %s: %s", a["backend"], "USED" if a["used"] else "skipped", a["reason"])
    try:
        app = create_app(backend, source, cfg, attempts)
        uvicorn.run(app, host=cfg.host, port=cfg.port, log_level=args.log_level, access_log=False)
    finally:
        source.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
