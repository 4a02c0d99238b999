"""Exported networks: a trial's saved weights as a checked, self-describing folder.

`pipeline.export_trial` writes one (`harness export`); `network.load_model` loads one
back as a PyTorch module and `preprocess` turns image files into its input
(`harness predict`). The modules: `bundle` (the folder, written whole), `manifest`
(config.json), `evaluate` (the trial's network rebuilt, its test accuracy re-measured),
`to_onnx`, `to_torchscript` (each format written and checked), `checks` (what a check
found; `ExportError`).

Nothing here imports torch at module level beyond what its functions need, so the
commands' `--help` stays fast.
"""
