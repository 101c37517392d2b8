"""Open Inference Protocol (KServe v2) request parsing and response encoding, with validation.

Every malformed request becomes a ``ProtocolError`` (HTTP 400, or 413 for an oversize body) whose
message names the offending field; nothing a client sends can crash the server (deeply nested JSON
included). JSON tensors and the binary tensor data extension (what ``tritonclient`` sends by
default) are both accepted. JSON cannot carry NaN or infinity: a response whose outputs are not all
finite is sent only as binary tensor data (raw IEEE floats), otherwise refused as a server error.

This module imports only numpy and the standard library: the server's parse workers import it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

HEADER_LENGTH = "Inference-Header-Content-Length"
NUMPY_DTYPES = {"FP32": np.dtype("<f4")}


class TensorSpec(Protocol):
    """What parsing needs of a tensor (``pipeline.export.onnx_export.TensorSpec`` or ``WireSpec``)."""

    @property
    def name(self) -> str: ...
    @property
    def dims(self) -> tuple[int, ...]: ...
    @property
    def datatype(self) -> str: ...


@dataclass(frozen=True)
class WireSpec:
    """A tensor spec that pickles without importing torch (sent to parse worker processes)."""

    name: str
    dims: tuple[int, ...]
    datatype: str = "FP32"

    @classmethod
    def of(cls, spec: TensorSpec) -> WireSpec:
        return cls(spec.name, tuple(spec.dims), spec.datatype)


class ProtocolError(ValueError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:  # keeps the status across a process boundary
        return type(self), (str(self), self.status)


class NonFiniteOutput(RuntimeError):
    """The model produced NaN/inf and the client asked for JSON, which cannot carry them."""


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    x: np.ndarray  # float32 (B, *input dims)
    binary_output: bool


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ProtocolError(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _split_body(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    if header_length is not None:
        _require(header_length.isdigit() and int(header_length) <= len(body),
                 f"{HEADER_LENGTH} must be an int <= the body size ({len(body)}), got {header_length!r}")  # fmt: skip
        cut = int(header_length)
        head, binary = body[:cut], body[cut:]
    else:
        head, binary = body, b""
    try:
        doc = json.loads(head)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ProtocolError(f"request body is not valid JSON ({err})") from None
    except RecursionError:
        raise ProtocolError("request body is nested too deeply to be a KServe v2 request") from None
    _require(isinstance(doc, dict), f"request body must be a JSON object, got {type(doc).__name__}")
    return doc, binary


def _tensor_data(tensor: dict[str, Any], shape: list[int], binary: bytes) -> np.ndarray:
    count = math.prod(shape)
    params = tensor.get("parameters") or {}
    _require(isinstance(params, dict), "inputs[0].parameters must be an object")
    if "binary_data_size" in params:
        size = params["binary_data_size"]
        _require(_is_int(size) and size == len(binary),
                 f"binary_data_size {size!r} does not match the {len(binary)} bytes after the JSON header")  # fmt: skip
        _require(size == count * 4, f"binary data holds {size} bytes, shape {shape} needs {count * 4} (FP32)")
        return np.frombuffer(binary, dtype=NUMPY_DTYPES["FP32"]).astype(np.float32).reshape(shape)
    _require(not binary, "binary data after the JSON header but no input declares binary_data_size")
    _require("data" in tensor, "inputs[0] needs 'data' (or parameters.binary_data_size)")
    try:
        array = np.asarray(tensor["data"])
    except (ValueError, TypeError, RecursionError) as err:  # ragged or too deeply nested lists
        raise ProtocolError(f"inputs[0].data is not a regular array of numbers ({type(err).__name__})") from None
    _require(array.ndim <= len(shape), f"inputs[0].data is nested {array.ndim} deep, shape {shape} allows at most "
             f"{len(shape)}")  # fmt: skip
    _require(array.dtype.kind in "fi", f"inputs[0].data must hold numbers, got {array.dtype} values")
    _require(array.size == count, f"inputs[0].data has {array.size} values, shape {shape} needs {count}")
    return array.astype(np.float32).reshape(shape)


def parse_infer_request(
    body: bytes, header_length: str | None, spec: TensorSpec, output: TensorSpec, max_batch: int
) -> InferRequest:
    """Validate a v2 infer request against the model's input spec and return the batch."""
    doc, binary = _split_body(body, header_length)
    inputs = doc.get("inputs")
    _require(isinstance(inputs, list) and len(inputs) == 1,
             f"'inputs' must be a list with exactly one tensor ({spec.name!r})")  # fmt: skip
    tensor = inputs[0]
    _require(isinstance(tensor, dict), "inputs[0] must be an object")
    _require(tensor.get("name") == spec.name, f"inputs[0].name must be {spec.name!r}, got {tensor.get('name')!r}")
    _require(tensor.get("datatype") == spec.datatype,
             f"inputs[0].datatype must be {spec.datatype!r}, got {tensor.get('datatype')!r}")  # fmt: skip
    shape = tensor.get("shape")
    expected = f"[batch, {', '.join(map(str, spec.dims))}] with 1 <= batch <= {max_batch}"
    _require(isinstance(shape, list) and len(shape) == len(spec.dims) + 1 and all(_is_int(d) for d in shape)
             and tuple(shape[1:]) == spec.dims and 1 <= shape[0] <= max_batch,
             f"inputs[0].shape must be {expected}, got {shape!r}")  # fmt: skip
    x = _tensor_data(tensor, shape, binary)
    bad = int(x.size - np.count_nonzero(np.isfinite(x)))
    _require(bad == 0, f"inputs[0].data contains {bad} NaN or infinite values")

    params = doc.get("parameters") or {}
    _require(isinstance(params, dict), "'parameters' must be an object")
    binary_output = params.get("binary_data_output") is True
    outputs = doc.get("outputs")
    if outputs is not None:
        _require(isinstance(outputs, list) and all(isinstance(o, dict) for o in outputs),
                 "'outputs' must be a list of objects")  # fmt: skip
        for o in outputs:
            _require(o.get("name") == output.name, f"unknown output {o.get('name')!r}; this model has {output.name!r}")
            binary_output = binary_output or (o.get("parameters") or {}).get("binary_data") is True
    request_id = doc.get("id")
    _require(request_id is None or isinstance(request_id, str), "'id' must be a string")
    return InferRequest(request_id, x, binary_output)


def encode_infer_response(
    model_name: str, request: InferRequest, y: np.ndarray, output: TensorSpec
) -> tuple[bytes, dict[str, str], str]:
    """(body, extra headers, media type): JSON tensors, or JSON header + raw little-endian FP32."""
    tensor: dict[str, Any] = {"name": output.name, "datatype": output.datatype, "shape": list(y.shape)}
    doc: dict[str, Any] = {"model_name": model_name, "model_version": "1", "outputs": [tensor]}
    if request.id is not None:
        doc["id"] = request.id
    if not request.binary_output:
        bad = int(y.size - np.count_nonzero(np.isfinite(y)))
        if bad:
            raise NonFiniteOutput(
                f"the model produced {bad} NaN or infinite values in {output.name!r}; JSON cannot carry them "
                "(request binary output, parameters.binary_data_output=true, to receive raw IEEE floats)"
            )
        tensor["data"] = y.ravel().tolist()
        return json.dumps(doc, allow_nan=False).encode(), {}, "application/json"
    raw = np.ascontiguousarray(y, dtype=NUMPY_DTYPES[output.datatype]).tobytes()
    tensor["parameters"] = {"binary_data_size": len(raw)}
    head = json.dumps(doc, allow_nan=False).encode()
    return head + raw, {HEADER_LENGTH: str(len(head))}, "application/octet-stream"
