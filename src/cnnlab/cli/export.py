"""``cnnlab export``: a checkpoint to ONNX or TorchScript (parity-checked), or its weights to safetensors."""
from __future__ import annotations

import argparse


def add(sub) -> argparse.ArgumentParser:
    x = sub.add_parser("export", help="export a checkpoint to ONNX or TorchScript (with a parity check), "
                                      "or its weights to safetensors")
    x.add_argument("checkpoint")
    x.add_argument("--format", default="onnx", choices=["onnx", "torchscript", "safetensors"],
                   help="safetensors: weights only, config and task as metadata (every task)")
    x.add_argument("--out", help="output file (default: beside the checkpoint)")
    x.add_argument("--atol", type=float, default=1e-4, help="largest logit difference accepted")
    x.add_argument("--device", default="auto")
    return x


def run(a) -> int:
    from cnnlab import api

    r = api.export(a.checkpoint, format=a.format, out=a.out, atol=a.atol, device=a.device)
    print(f"wrote {r['path']} ({r['format']})")
    if r["format"] == "safetensors":
        print(f"read back: {r['tensors']} tensors, max |difference| {r['max_abs_diff']:g}; "
              f"cnnlab predict {r['path']} IMAGE")
        return 0
    print(f"parity: max |logit difference| {r['max_abs_diff']:.2g} <= {r['atol']:g} "
          f"(PyTorch fp32 vs the export, batch sizes {', '.join(map(str, r['batch_sizes']))})")
    return 0
