"""Export-time tools (need the ``train`` extra: torch, onnx, h5py); never imported by the runtime."""
