"""Quantization-aware training (tfmot) and the per-layer int8 sensitivity report.

QAT: ``quantize_aware`` first folds every BatchNorm that follows a conv into that conv (``fold_batchnorm``), as the
TFLite converter does. tfmot does not, and unfolded its fake-quant graph simulates an int8 network other than the
one TFLite builds (BENCHMARKS.md, quant). It then annotates every layer - tfmot's registry covers Conv2D,
Conv2DTranspose, DepthwiseConv2D, UpSampling2D (resize), pooling, Add, Concatenate; the project's layers get a
QuantizeConfig here (``LAYER_CONFIGS``) - and applies the 8-bit scheme, or the prune-preserving one so that a
pruned student keeps its zeros. QAT is measured against PTQ, never assumed better.
tfmot starts every activation range at [-6, 6] and moves it by an EMA of decay 0.999, so a few hundred fine-tuning
steps leave heatmaps (peak about 1) quantized in steps of 0.04; ``calibrate_ranges`` sets the ranges from data
first, as PTQ's calibration would.

Sensitivity: ``sensitivity_report`` converts to int8 once with TFLite's QuantizationDebugger and ranks the layers by
their int8 output error in units of the int8 step; ``convert(float_nodes=...)`` keeps the worst ones float.
"""

from __future__ import annotations

import numpy as np
import tensorflow_model_optimization as tfmot

from tfpose._keras import keras, tf
from tfpose.finetune import finetune
from tfpose.models.blocks import PixelShuffle
from tfpose.models.heads import InferenceReLU6
from tfpose.models.rewrite import rebuild

QuantizeConfig = tfmot.quantization.keras.QuantizeConfig


@keras.utils.register_keras_serializable(package="tfpose")
class NoOpQuantizeConfig(QuantizeConfig):
    """Nothing to quantize: depth_to_space only moves values, so its output keeps its input's int8 scale."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


@keras.utils.register_keras_serializable(package="tfpose")
class OutputQuantizeConfig(NoOpQuantizeConfig):
    """The output alone: a weightless affine layer (Rescaling, the in-graph normalisation) whose output range the
    int8 graph needs."""

    def get_output_quantizers(self, layer):
        return [tfmot.quantization.keras.quantizers.MovingAverageQuantizer(
            num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]


LAYER_CONFIGS: dict[type, type[QuantizeConfig]] = {
    PixelShuffle: NoOpQuantizeConfig,
    InferenceReLU6: NoOpQuantizeConfig,
    # int8 AVERAGE_POOL_2D must keep its input's scale; tfmot's own config gives its output a quantizer of its own
    keras.layers.AveragePooling2D: NoOpQuantizeConfig,
    keras.layers.Rescaling: OutputQuantizeConfig,
}


# layers whose output channels a following BatchNorm can scale and shift exactly
FOLDABLE = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Conv2DTranspose)


def fold_batchnorm(model: keras.Model) -> keras.Model:
    """A copy of functional ``model`` without the BatchNorms it can fold: each one whose input is a linear conv
    that feeds nothing else becomes that conv's kernel scale and bias. Same outputs in inference mode (the
    moving statistics are used); other layers and weights are copied unchanged, ``model`` is untouched."""
    config = model.get_config()
    layer = {each.name: each for each in model.layers}
    uses = _consumers(config)
    folds = {}                                    # BatchNorm name -> the conv it folds into
    for entry in config["layers"]:
        source = _single_input(entry)
        if (entry["class_name"] == "BatchNormalization" and source and uses[source] == 1
                and isinstance(layer[source], FOLDABLE) and layer[entry["name"]].axis in ([3], [-1])
                and layer[source].get_config().get("activation", "linear") == "linear"):
            folds[entry["name"]] = source
    kept = []
    for entry in config["layers"]:
        if entry["name"] in folds:
            continue
        if entry["name"] in folds.values():
            entry["config"]["use_bias"] = True
        entry["inbound_nodes"] = _renamed(entry["inbound_nodes"], folds)
        kept.append(entry)
    config["layers"] = kept
    config["output_layers"] = _renamed(config["output_layers"], folds)
    into = {conv: norm for norm, conv in folds.items()}
    return rebuild(config, lambda name: _folded_weights(layer[name], layer[into[name]]) if name in into
                   else layer[name].get_weights())


def _consumers(config: dict) -> dict[str, int]:
    """How many inbound references (and model outputs) each layer's output has."""
    uses = {entry["name"]: 0 for entry in config["layers"]}
    for entry in config["layers"]:
        for node in entry["inbound_nodes"]:
            for ref in node:
                uses[ref[0]] += 1
    for ref in config["output_layers"]:
        uses[ref[0]] += 1
    return uses


def _single_input(entry: dict) -> str | None:
    nodes = entry["inbound_nodes"]
    return nodes[0][0][0] if len(nodes) == 1 and len(nodes[0]) == 1 else None


def _renamed(refs, names: dict[str, str]):
    """Inbound-node or output references with every folded BatchNorm's name replaced by its conv's."""
    if isinstance(refs, (list, tuple)) and refs and isinstance(refs[0], str):
        return [names.get(refs[0], refs[0]), *refs[1:]]
    return [_renamed(r, names) for r in refs]


def _folded_weights(conv, norm) -> list[np.ndarray]:
    """W' = W * s, b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps), per output channel."""
    gamma, beta, mean, variance = (np.asarray(w, np.float64) for w in _norm_parameters(norm))
    scale = gamma / np.sqrt(variance + norm.epsilon)
    weights = [np.asarray(w, np.float64) for w in conv.get_weights()]
    kernel = weights[0]
    if isinstance(conv, keras.layers.DepthwiseConv2D):      # (kh, kw, C_in, multiplier): out channel c * m + j
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    elif isinstance(conv, keras.layers.Conv2DTranspose):    # (kh, kw, C_out, C_in)
        kernel = kernel * scale[:, None]
    else:                                                   # (kh, kw, C_in, C_out)
        kernel = kernel * scale
    bias = weights[1] if conv.use_bias else np.zeros_like(scale)
    return [kernel.astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)]


def _norm_parameters(norm) -> tuple:
    channels = norm.moving_mean.shape[0]
    gamma = norm.gamma.numpy() if norm.scale else np.ones(channels)
    beta = norm.beta.numpy() if norm.center else np.zeros(channels)
    return gamma, beta, norm.moving_mean.numpy(), norm.moving_variance.numpy()


def quantize_aware(model: keras.Model, preserve_sparsity: bool = False) -> keras.Model:
    """A QAT copy of ``model`` with its BatchNorms folded (fake-quant wrappers; ``model`` untouched).

    preserve_sparsity: tfmot's Default8BitPrunePreserveQuantizeScheme, which keeps a pruned model's zeros in Conv2D
    kernels (plain QAT would fill them in while training).
    """
    q = tfmot.quantization.keras
    annotate = lambda layer: q.quantize_annotate_layer(layer, _config(layer))   # noqa: E731
    annotated = keras.models.clone_model(fold_batchnorm(model), clone_function=annotate)
    scheme = (tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme() if preserve_sparsity
              else q.default_8bit.Default8BitQuantizeScheme())
    with q.quantize_scope(custom_objects()):
        return q.quantize_apply(annotated, scheme)


def _config(layer) -> QuantizeConfig | None:
    for cls, config in LAYER_CONFIGS.items():
        if type(layer) is cls:
            return config()
    return None


def custom_objects() -> dict:
    """What loading a saved QAT model needs, inside ``tfmot.quantization.keras.quantize_scope``."""
    return {"PixelShuffle": PixelShuffle, "InferenceReLU6": InferenceReLU6, "NoOpQuantizeConfig": NoOpQuantizeConfig,
            "OutputQuantizeConfig": OutputQuantizeConfig}


def quantization_aware_training(student: keras.Model, data: tf.data.Dataset, steps: int, teacher=None,
                                alpha: float = 0.5, learning_rate: float = 1e-5,
                                preserve_sparsity: bool = False, heatmap_loss: str = "mse") -> keras.Model:
    """QAT copy of ``student`` fine-tuned ``steps`` batches through the Distiller. At least one step is needed:
    a QAT model converted untrained keeps float ops."""
    if steps < 1:
        raise ValueError("quantization-aware training needs at least one fine-tuning step")
    qat = quantize_aware(student, preserve_sparsity)
    calibrate_ranges(qat, np.concatenate([x.numpy() for x, _ in data.take(4)]))
    return finetune(qat, data, steps, teacher, alpha, learning_rate, heatmap_loss=heatmap_loss)


def calibrate_ranges(qat_model: keras.Model, crops: np.ndarray) -> None:
    """Set every fake-quant range of ``qat_model`` to the min / max it sees on ``crops`` (N, H, W, 3) raw pixels,
    in place. The quantizers run in training mode (only then do they update their ranges), the BatchNorms on their
    moving statistics, as the converted model will; no other weight changes."""
    from tensorflow_model_optimization.python.core.quantization.keras import quant_ops

    is_range = lambda v: v.name.endswith(("_min:0", "_max:0"))    # noqa: E731
    kept = [(v, v.numpy()) for v in qat_model.variables if not is_range(v)]
    # a non-trainable Keras BatchNormalization runs in inference mode even when called with training=True
    norms = [inner for inner in (getattr(layer, "layer", layer) for layer in qat_model.layers)
             if isinstance(inner, keras.layers.BatchNormalization) and inner.trainable]
    ema = quant_ops.tf.__internal__.train.assign_moving_average
    quant_ops.tf.__internal__.train.assign_moving_average = lambda variable, value, *a, **k: variable.assign(value)
    for norm in norms:
        norm.trainable = False
    try:
        qat_model(tf.constant(crops, tf.float32), training=True)
    finally:
        quant_ops.tf.__internal__.train.assign_moving_average = ema
        for norm in norms:
            norm.trainable = True
    for variable, value in kept:
        variable.assign(value)


def sensitivity_report(model: keras.Model, calibration: np.ndarray) -> list[dict]:
    """Every quantized op of ``model``'s int8 conversion, worst first: the Keras layer it comes from, the op, its
    output tensor (what ``convert(float_nodes=...)`` takes) and the RMSE of its int8 output against float, in
    int8 steps (``rmse_per_step``; about 0.29 is rounding alone) and absolute. Ops that only move values
    (concatenation, pooling, depth_to_space) are left out: their error is their input's."""
    from tflite.convert import quantization_errors

    movers = {"CONCATENATION", "MAX_POOL_2D", "AVERAGE_POOL_2D", "DEPTH_TO_SPACE", "RESHAPE", "QUANTIZE",
              "DEQUANTIZE"}
    rows = [{**r, "layer": _layer_name(r["tensor"], model)} for r in quantization_errors(model, calibration)
            if r["op"] not in movers]
    return sorted(rows, key=lambda r: -r["rmse_per_step"])


def _layer_name(tensor: str, model) -> str:
    """'peleenet_duc/stem1_relu/Relu;peleenet_duc/stem1_conv/Conv2D' -> 'stem1_conv' (the last fused layer named);
    the graph output's tensor is named after the traced function, so it maps to the output layer."""
    parts = [p.split("/") for p in tensor.split(";")]
    names = [p[1] for p in parts if len(p) > 2 and p[0] == model.name]
    if names:
        return names[-1]
    return model.layers[-1].name if tensor.startswith("StatefulPartitionedCall") else tensor


def sensitivity_markdown(rows: list[dict], top: int = 10) -> str:
    lines = ["| layer | op | RMSE / int8 step | RMSE |", "|---|---|---|---|"]
    lines += [f"| {r['layer']} | {r['op']} | {r['rmse_per_step']:.2f} | {r['rmse']:.2e} |" for r in rows[:top]]
    return "\n".join(lines) + "\n"
