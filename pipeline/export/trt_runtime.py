"""Run a TensorRT engine built by ``trt_build`` with torch CUDA tensors as buffers.

Only engines this pipeline built on this machine are loaded: a serialized engine is code for the
GPU and must never come from an untrusted source.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pipeline.export.trt_build import import_tensorrt


class TensorRTRunner:
    """Callable float32 (B, C, H, W) numpy → float32 (B, classes) numpy on CUDA device 0."""

    def __init__(self, engine_path: str | os.PathLike):
        import torch

        trt = import_tensorrt()
        self._torch = torch
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise RuntimeError(f"{engine_path}: TensorRT could not deserialize the engine (GPU/version mismatch?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise RuntimeError(f"{engine_path}: expected one input and one output, got {inputs} / {outputs}")
        self.input_name, self.output_name = inputs[0], outputs[0]
        dtypes = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16}
        self._in_dtype = dtypes[self.engine.get_tensor_dtype(self.input_name)]
        self._out_dtype = dtypes[self.engine.get_tensor_dtype(self.output_name)]

    def run_torch(self, x):  # noqa: ANN001, ANN201 - torch CUDA tensor in and out
        """Device-resident call (no host copies): what the benchmark times."""
        torch = self._torch
        x = x.to(device="cuda", dtype=self._in_dtype).contiguous()
        self.context.set_input_shape(self.input_name, tuple(x.shape))
        out = torch.empty(tuple(self.context.get_tensor_shape(self.output_name)), dtype=self._out_dtype, device="cuda")
        self.context.set_tensor_address(self.input_name, x.data_ptr())
        self.context.set_tensor_address(self.output_name, out.data_ptr())
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        return out

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = self.run_torch(self._torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        return out.float().cpu().numpy()  # .cpu() synchronises the stream
