"""KServe v2 request validation: every malformed request is a 400 naming the problem."""

import json

import numpy as np
import pytest

from pipeline.export.onnx_export import TensorSpec
from pipeline.serve.protocol import InferRequest, ProtocolError, encode_infer_response, parse_infer_request

IN, OUT = TensorSpec("input", (1, 4, 4)), TensorSpec("logits", (3,))


def _body(**overrides):
    tensor = {"name": "input", "shape": [2, 1, 4, 4], "datatype": "FP32", "data": [0.5] * 32}
    tensor.update(overrides)
    return json.dumps({"inputs": [tensor]}).encode()


def _parse(body, header=None):
    return parse_infer_request(body, header, IN, OUT, max_batch=8)


def test_json_request_is_parsed():
    request = _parse(_body(data=[[0.25] * 16, [0.75] * 16]))  # nested lists are fine
    assert request.x.shape == (2, 1, 4, 4) and request.x.dtype == np.float32 and not request.binary_output


def test_binary_extension_request_is_parsed():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4) / 16
    head = json.dumps({"inputs": [{"name": "input", "shape": [1, 1, 4, 4], "datatype": "FP32",
                                   "parameters": {"binary_data_size": x.nbytes}}],
                       "parameters": {"binary_data_output": True}}).encode()  # fmt: skip
    request = _parse(head + x.tobytes(), str(len(head)))
    np.testing.assert_array_equal(request.x, x)
    assert request.binary_output


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{oops", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (json.dumps({"inputs": []}).encode(), "exactly one tensor"),
        (_body(name="x"), "inputs\\[0\\].name must be 'input'"),
        (_body(datatype="FP64"), "datatype must be 'FP32'"),
        (_body(datatype="INT8"), "datatype must be 'FP32'"),
        (_body(shape=[2, 1, 4, 5]), "shape must be \\[batch, 1, 4, 4\\]"),
        (_body(shape=[9, 1, 4, 4], data=[0.0] * 144), "1 <= batch <= 8"),
        (_body(shape=[0, 1, 4, 4], data=[]), "1 <= batch <= 8"),
        (_body(shape="2,1,4,4"), "shape must be"),
        (_body(data=[0.5] * 31), "has 31 values"),
        (_body(data=["a"] * 32), "must hold numbers"),
        (_body(data=[True] * 32), "must hold numbers"),
        (_body(data=[[0.5] * 16, [0.5] * 15]), "not a regular array"),
        (_body(data=[float("nan")] + [0.5] * 31), "1 NaN or infinite"),
        (_body(data=[float("inf"), float("-inf")] + [0.5] * 30), "2 NaN or infinite"),
        (_body(), None),
    ],
)
def test_malformed_requests_are_protocol_errors(body, message):
    if message is None:
        _parse(body)
        return
    with pytest.raises(ProtocolError, match=message) as err:
        _parse(body)
    assert err.value.status == 400


def test_bad_binary_framing_is_refused():
    head = json.dumps({"inputs": [{"name": "input", "shape": [1, 1, 4, 4], "datatype": "FP32",
                                   "parameters": {"binary_data_size": 64}}]}).encode()  # fmt: skip
    with pytest.raises(ProtocolError, match="does not match the 8 bytes"):
        _parse(head + b"\0" * 8, str(len(head)))
    with pytest.raises(ProtocolError, match="must be an int"):
        _parse(head, "-3")
    with pytest.raises(ProtocolError, match="no input declares binary_data_size"):
        body = _body()
        _parse(body + b"\0" * 4, str(len(body)))


def test_unknown_requested_output_is_refused():
    doc = json.loads(_body())
    doc["outputs"] = [{"name": "probs"}]
    with pytest.raises(ProtocolError, match="unknown output 'probs'"):
        _parse(json.dumps(doc).encode())


def test_response_json_and_binary():
    y = np.arange(6, dtype=np.float32).reshape(2, 3)
    body, headers, media = encode_infer_response("m", InferRequest("7", y, False), y, OUT)
    doc = json.loads(body)
    assert media == "application/json" and headers == {} and doc["id"] == "7"
    assert doc["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [2, 3], "data": list(range(6))}]
    body, headers, media = encode_infer_response("m", InferRequest(None, y, True), y, OUT)
    cut = int(headers["Inference-Header-Content-Length"])
    assert json.loads(body[:cut])["outputs"][0]["parameters"] == {"binary_data_size": 24}
    np.testing.assert_array_equal(np.frombuffer(body[cut:], np.float32).reshape(2, 3), y)
