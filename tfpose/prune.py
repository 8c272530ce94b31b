"""Magnitude pruning with tensorflow-model-optimization: wrap the chosen layers, fine-tune through the Distiller
while a polynomial-decay schedule raises their sparsity to the target, strip the wrappers, report what was reached.

The stem (it sees raw pixels) and the final heatmap conv (it writes every output value) stay dense unless asked.
Zeroed weights do not make int8 TFLite faster; they make the file compress (zip, gzip), which is what the report
measures. Scattered zeros compress poorly: a 50 %-sparse int8 file still holds about 4.7 bits of entropy per weight
(7.4 dense), and deflate gets it only to about 0.74x. ``block`` > 1 zeroes the 1x1 convs (most of a PeleeNet's
weights) in runs of that many input channels of one output channel, contiguous in the TFLite kernel, which
deflate codes as runs. tfmot's block sparsity takes only 2-D kernels, so those convs are pruned as the equal
Dense layers on the channel axis and turned back into convs afterwards.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from tfpose._keras import keras, tf
from tfpose.finetune import copy_model, finetune
from tfpose.models.rewrite import rebuild

PRUNABLE = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)   # Conv2DTranspose is a Conv2D


@dataclass
class PruneResult:
    model: keras.Model           # stripped: plain layers, pruned kernels hold exact zeros
    layers: dict[str, float]     # sparsity of each pruned layer's kernel
    sparsity: float              # over every pruned kernel together
    dense_layers: list[str]      # prunable layers that were left dense
    compressed_bytes: dict[str, int]    # zlib size of all float32 weights, "before" and "after"


def kernel_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if isinstance(layer, PRUNABLE)]


def choose_layers(model: keras.Model, prune_stem: bool = False, prune_head: bool = False) -> list[str]:
    """Names of the layers to prune: every conv/dense layer but the stem (layers named ``stem*``, else the first
    kernel layer) and the layer that writes the model output, unless asked."""
    kernels = kernel_layers(model)
    stem = {layer.name for layer in kernels if layer.name.startswith("stem")} or {kernels[0].name}
    head = {model.get_layer(name=model.output_names[0]).name} if model.output_names else set()
    skip = (set() if prune_stem else stem) | (set() if prune_head else head)
    return [layer.name for layer in kernels if layer.name not in skip]


def schedule(target_sparsity: float, steps: int, end_fraction: float = 0.7):
    """PolynomialDecay from 0 to the target over the first ``end_fraction`` of fine-tuning, about ten mask
    updates, the last one exactly at the end step so the target is reached; the rest trains at that sparsity."""
    import tensorflow_model_optimization as tfmot

    if steps < 2:
        raise ValueError(f"pruning needs at least 2 fine-tuning steps, got {steps}")
    end = max(1, min(steps - 1, int(end_fraction * steps)))
    frequency = max(1, end // 10)
    return tfmot.sparsity.keras.PolynomialDecay(0.0, target_sparsity, 0, end // frequency * frequency, frequency=frequency)


def prune(student: keras.Model, target_sparsity: float, data: tf.data.Dataset, steps: int, teacher=None,
          alpha: float = 0.5, learning_rate: float = 1e-4, layers: list[str] | None = None,
          block: int = 1, heatmap_loss: str = "mse") -> PruneResult:
    """Prune a copy of ``student`` to ``target_sparsity`` on ``layers`` (default: ``choose_layers``) while
    fine-tuning for ``steps`` batches of ``data`` through the Distiller (``teacher`` may be None: ground truth).
    block: > 1 prunes the chosen 1x1 convs in runs of ``block`` input channels; other kernels weight by weight."""
    import tensorflow_model_optimization as tfmot

    if not 0.0 <= target_sparsity < 1.0:
        raise ValueError(f"target sparsity must be in [0, 1), got {target_sparsity}")
    if block < 1:
        raise ValueError(f"pruning block must be at least 1 input channel, got {block}")
    model = copy_model(student)
    chosen = set(choose_layers(model) if layers is None else layers)
    unknown = chosen - {layer.name for layer in kernel_layers(model)}
    if unknown:
        raise ValueError(f"not prunable layers of {model.name}: {sorted(unknown)}")
    pointwise = {name for name in chosen if block > 1 and _is_pointwise(model.get_layer(name))}
    if pointwise:
        model = _pointwise_as_dense(model, pointwise)
    pruning_schedule = schedule(target_sparsity, steps)

    def wrap(layer):
        if layer.name not in chosen:
            return layer
        return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=pruning_schedule,
                                                        block_size=(block, 1) if layer.name in pointwise else (1, 1))

    wrapped = keras.models.clone_model(model, clone_function=wrap)   # shares the copy's layers and weights
    finetune(wrapped, data, steps, teacher, alpha, learning_rate, [tfmot.sparsity.keras.UpdatePruningStep()],
             heatmap_loss)
    stripped = tfmot.sparsity.keras.strip_pruning(wrapped)
    if pointwise:
        stripped = _dense_as_pointwise(stripped, pointwise, student)
    per_layer = {name: layer_sparsity(stripped.get_layer(name)) for name in sorted(chosen)}
    kernels = [_kernel(stripped.get_layer(name)) for name in sorted(chosen)]
    total = sum(int((k == 0).sum()) for k in kernels) / max(1, sum(k.size for k in kernels))
    dense = [layer.name for layer in kernel_layers(stripped) if layer.name not in chosen]
    return PruneResult(stripped, per_layer, total, dense,
                       {"before": weights_zip_bytes(student), "after": weights_zip_bytes(stripped)})


def _is_pointwise(layer) -> bool:
    """A plain 1x1 Conv2D (stride 1, no dilation or groups): the same function as a Dense layer on the channels."""
    return (type(layer) is keras.layers.Conv2D and tuple(layer.kernel_size) == (1, 1) and
            tuple(layer.strides) == (1, 1) and tuple(layer.dilation_rate) == (1, 1) and layer.groups == 1)


def _pointwise_as_dense(model: keras.Model, names: set[str]) -> keras.Model:
    """A copy in which the 1x1 convs ``names`` are Dense layers (kernel (C_in, C_out)) on the channel axis."""
    config = model.get_config()
    for entry in config["layers"]:
        if entry["name"] in names:
            conv = entry["config"]
            entry.update(class_name="Dense", module="keras.layers", registered_name=None,
                         config={"name": conv["name"], "trainable": conv["trainable"], "dtype": conv["dtype"],
                                 "units": conv["filters"], "activation": conv["activation"],
                                 "use_bias": conv["use_bias"]})
    return rebuild(config, lambda name: _reshaped_kernel(model, name, names, lambda kernel: kernel[0, 0]))


def _dense_as_pointwise(model: keras.Model, names: set[str], original: keras.Model) -> keras.Model:
    """Undo ``_pointwise_as_dense``: the Dense layers ``names`` become ``original``'s 1x1 convs again."""
    config = model.get_config()
    convs = {entry["name"]: entry for entry in original.get_config()["layers"]}
    config["layers"] = [{**convs[e["name"]], "inbound_nodes": e["inbound_nodes"]} if e["name"] in names else e
                        for e in config["layers"]]
    return rebuild(config, lambda name: _reshaped_kernel(model, name, names, lambda kernel: kernel[None, None]))


def _reshaped_kernel(model: keras.Model, name: str, names: set[str], reshape) -> list[np.ndarray]:
    """Layer ``name``'s weights, its kernel reshaped when it is one of ``names``."""
    weights = model.get_layer(name).get_weights()
    return [reshape(weights[0]), *weights[1:]] if name in names else weights


def _kernel(layer) -> np.ndarray:
    weight = layer.depthwise_kernel if isinstance(layer, keras.layers.DepthwiseConv2D) else layer.kernel
    return np.asarray(weight.numpy())


def layer_sparsity(layer) -> float:
    """Fraction of exact zeros in a layer's kernel."""
    kernel = _kernel(layer)
    return float((kernel == 0).mean())


def compressed_size(data: bytes) -> int:
    """Bytes after deflate at level 9: what zip or gzip makes of a file, without the archive headers."""
    return len(zlib.compress(data, 9))


def weights_zip_bytes(model: keras.Model) -> int:
    return compressed_size(b"".join(np.asarray(w, np.float32).tobytes() for w in model.get_weights()))


def report_markdown(result: PruneResult) -> str:
    """The per-layer sparsity table and the compressed size of the float weights."""
    lines = [f"Sparsity over the pruned kernels: {result.sparsity:.3f}; dense: {', '.join(result.dense_layers)}",
             f"Deflate size of the float32 weights: {result.compressed_bytes['before'] / 1024:.0f} KiB -> "
             f"{result.compressed_bytes['after'] / 1024:.0f} KiB", "", "| layer | sparsity |", "|---|---|"]
    lines += [f"| {name} | {s:.3f} |" for name, s in result.layers.items()]
    return "\n".join(lines) + "\n"
