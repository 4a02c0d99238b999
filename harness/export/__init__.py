"""Exported networks: a trial's saved weights as a checked, self-describing folder.

`pipeline.export_trial` writes one (`harness export`; `select.best_trial` is `--best`);
`network.load_model` loads one back as a PyTorch module and `predict.predict_files`
gives images' class probabilities under it (`harness predict`). The other modules:
`bundle` (the folder, written whole, read back checked), `manifest` (config.json),
`evaluate` (the trial's network rebuilt, its test accuracy re-measured), `preprocess`
(image files -> the batch training fed), `to_onnx`, `to_torchscript` (each format
written and run), `checks` (what a check found; `ExportError`).

Each module imports torch, timm and onnx inside its functions, so that the commands'
`--help` stays fast and the export extra is needed only by ONNX.
"""
