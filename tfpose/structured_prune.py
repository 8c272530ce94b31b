"""Structured (channel) pruning: whole channels leave the graph, so the int8 file computes less instead of only
zipping smaller. tfmot prunes weights, and XNNPACK's sparse kernels run float models only: a sparse int8 file is
no faster. A narrower one is, on every CPU.

1. ``channel_graph``: which channels must go together. A conv (or dense) layer's output channels are born there;
   BatchNorm, activations that keep 0 at 0, depthwise convs, padding, pooling and resampling carry them through;
   an Add ties its inputs' channels one to one (MobileNetV2's residual stages, the pyramid's laterals);
   Concatenate stacks them. A *component* is one tied channel; a *group* is the components born at the same
   layers (a block's expansion channels with their depthwise and projection partners, a residual stage, a
   pyramid level). Channels that reach the model's output or pass a layer this module does not know stay.
2. ``saliency`` of each component: ``bn`` (|gamma| / sqrt(var + eps) of the BatchNorm after the conv; network
   slimming), ``magnitude`` (L1 norm of the conv's output filter, BatchNorm folded in; Li et al. 2017),
   ``taylor`` (mean |dL/dm| of a channel gate m; Molchanov et al. 2017) and ``fisher`` (mean (dL/dm)^2 / 2;
   Theis et al. 2018), both on real batches through the Distiller's loss, the gate shared by every layer that
   reads the channel (as MMRazor's GroupFisher shares one mask per channel unit); ``random``, the control.
3. ``allocate``: ``uniform`` keeps the same fraction of every group, ranked inside it; ``global`` removes, chunk
   by chunk, the chunk with the least saliency per multiply-add saved (GroupFisher's normalisation) until the
   target MACs is reached. Group widths stay multiples of ``divisor`` (XNNPACK packs channels by 8 or 16).
4. ``prune_graph`` rebuilds the narrower functional model with sliced weights (``tfpose.models.rewrite``): it
   computes exactly what the original computes with the removed channels zeroed.

Fine-tuning afterwards goes through ``tfpose.finetune`` (``tfpose.export.prune_channels``; ``tfpose prune``).
Shape legend: B crops, C channels of one tensor, N components, G groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from tfpose._keras import keras, tf
from tfpose.errors import InputError
from tfpose.models.rewrite import rebuild

Criterion = Literal["fisher", "taylor", "magnitude", "bn", "random"]
CRITERIA: tuple[Criterion, ...] = ("fisher", "taylor", "magnitude", "bn", "random")
LOSS_CRITERIA = ("fisher", "taylor")      # in loss units: comparable across groups, so they can allocate globally
Allocation = Literal["global", "uniform"]

layers = keras.layers
# activations f with f(0) = 0: a zeroed channel stays zero through them
_ZERO_KEEPING = {"linear", "relu", "relu6", "tanh", "swish", "silu", "elu", "selu", "gelu", "softsign"}


@keras.utils.register_keras_serializable(package="tfpose")
class ChannelGate(layers.Layer):
    """x * gate[b, c]: (B, ..., C) -> same, one gate per crop (up to ``batch``) and channel, all ones. The loss's
    gradient to gate[b, c] is crop b's first-order change of the loss were channel c removed."""

    def __init__(self, batch: int, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.batch, self.channels = int(batch), int(channels)

    def build(self, input_shape):
        self.gate = self.add_weight(name="gate", shape=(self.batch, self.channels), initializer="ones")
        super().build(input_shape)

    def call(self, inputs):
        gate = self.gate[: tf.shape(inputs)[0]]
        return inputs * tf.reshape(gate, [-1] + [1] * (inputs.shape.rank - 2) + [self.channels])

    def get_config(self):
        return {**super().get_config(), "batch": self.batch, "channels": self.channels}


@dataclass
class ChannelGraph:
    """Channel coupling of a flat functional model (each layer called once)."""
    channels: dict[str, np.ndarray]        # layer name -> (C,) component of each channel of its output
    inputs: dict[str, list[str]]           # layer name -> the layers it reads, in call order
    sources: list[str]                     # convs / dense layers, where channels are born, in graph order
    opaque: set[str]                       # layers whose channels all stay, weights untouched
    fixed: np.ndarray                      # (N,) bool: components that stay
    groups: list[np.ndarray]               # (n_g,) components of each prunable group
    group_names: list[str]                 # the layers each group is born at, joined by '+'
    terms: list[tuple[float, str | None, str | None]] = field(default_factory=list)
    # MACs = sum of coef x width(input of layer a) x width(output of layer b) over (coef, a, b); None: factor 1

    @property
    def size(self) -> int:
        return len(self.fixed)

    def width(self, name: str, keep: np.ndarray) -> int:
        return int(keep[self.channels[name]].sum())

    def macs(self, keep: np.ndarray) -> float:
        """Multiply-adds at batch 1 with the components ``keep`` (N,) bool (what ``tfpose.flops`` would count)."""
        total = 0.0
        for coef, a, b in self.terms:
            total += coef * (self.width(a, keep) if a else 1) * (self.width(b, keep) if b else 1)
        return total

    def group_macs(self):
        """A fast MACs(kept) for (G,) kept counts per group: every tensor holds whole groups, so its width is
        linear in them."""
        names = sorted({n for _, a, b in self.terms for n in (a, b) if n})
        index = {n: i for i, n in enumerate(names)}
        member = np.zeros((len(names), len(self.groups)))
        base = np.zeros(len(names))
        of_group = np.full(self.size, -1)
        for g, comps in enumerate(self.groups):
            of_group[comps] = g
        for n in names:
            ids = self.channels[n]
            base[index[n]] = np.sum(of_group[ids] < 0)
            np.add.at(member[index[n]], of_group[ids][of_group[ids] >= 0], 1.0)
        member /= np.maximum([len(c) for c in self.groups], 1)
        coef = np.array([t[0] for t in self.terms])
        a = np.array([index[t[1]] if t[1] else -1 for t in self.terms])
        b = np.array([index[t[2]] if t[2] else -1 for t in self.terms])

        def macs(kept: np.ndarray) -> float:
            w = np.append(base + member @ kept, 1.0)          # index -1: the factor 1 of a missing side
            return float(np.sum(coef * w[a] * w[b]))

        return macs


def _kind(layer) -> str:
    """'source' (channels born), 'through' (channel i in, channel i out), 'merge' (element-wise over inputs),
    'concat', or 'opaque' (its channels stay)."""
    if isinstance(layer, layers.SeparableConv2D):
        return "source" if layer.data_format == "channels_last" else "opaque"
    if isinstance(layer, layers.DepthwiseConv2D):
        return "through" if layer.depth_multiplier == 1 and layer.data_format == "channels_last" else "opaque"
    if isinstance(layer, layers.Conv2D):                      # and Conv2DTranspose
        return "source" if layer.groups == 1 and layer.data_format == "channels_last" else "opaque"
    if isinstance(layer, layers.Dense):
        return "source"
    if isinstance(layer, layers.BatchNormalization):
        rank = len(layer.input_shape)
        return "through" if list(layer.axis) in ([rank - 1], [-1]) else "opaque"
    if isinstance(layer, layers.Activation):
        return "through" if getattr(layer.activation, "__name__", "") in _ZERO_KEEPING else "opaque"
    if isinstance(layer, layers.ReLU):
        return "through" if float(layer.threshold) == 0 else "opaque"
    if isinstance(layer, layers.Rescaling):
        return "through" if np.ndim(layer.scale) == 0 and np.all(np.asarray(layer.offset) == 0) else "opaque"
    if isinstance(layer, (layers.Add, layers.Subtract, layers.Multiply, layers.Average, layers.Maximum,
                          layers.Minimum)):
        return "merge"
    if isinstance(layer, layers.Concatenate):
        return "concat" if layer.axis in (-1, len(layer.output_shape) - 1) else "opaque"
    from tfpose.models.heads import InferenceReLU6

    if isinstance(layer, (layers.ZeroPadding2D, layers.Cropping2D, layers.UpSampling2D, layers.MaxPooling2D,
                          layers.AveragePooling2D, layers.Dropout, layers.LeakyReLU, InferenceReLU6)):
        return "through"
    return "opaque"


def channel_graph(model: keras.Model, keep_layers: Sequence[str] = ()) -> ChannelGraph:
    """The channel coupling of ``model``; channels born at ``keep_layers`` stay as well."""
    from tfpose.flops import layer_macs

    parent: list[int] = []

    def new(n: int) -> np.ndarray:
        ids = np.arange(len(parent), len(parent) + n)
        parent.extend(ids.tolist())
        return ids

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    config = model.get_config()
    raw: dict[str, np.ndarray] = {}
    inputs: dict[str, list[str]] = {}
    born: dict[int, set[str]] = {}
    pinned: list[np.ndarray] = []
    sources, terms, opaque = [], [], set()
    for entry in config["layers"]:
        name, layer = entry["name"], model.get_layer(entry["name"])
        if len(entry["inbound_nodes"]) > 1:
            raise InputError(f"layer '{name}' of {model.name} is called more than once; channel pruning needs "
                             "each layer called once")
        refs = [ref for node in entry["inbound_nodes"] for ref in node]
        inputs[name] = [ref[0] for ref in refs]
        ins = [raw[n] for n in inputs[name]]
        width = int(layer.output.shape[-1]) if not isinstance(layer.output, (list, tuple)) else 0
        kind = "opaque" if not refs or any(ref[2] != 0 for ref in refs) or not width else _kind(layer)
        expected = {"through": [width], "merge": [width] * len(ins), "concat": [len(i) for i in ins],
                    "source": [int(layer.input_shape[-1])] if kind == "source" else []}.get(kind, [])
        if [len(i) for i in ins] != expected or (kind == "concat" and sum(expected) != width):
            kind = "opaque"           # an input this module could not follow channel by channel
        if kind == "source":
            raw[name] = new(width)
            for i in raw[name]:
                born[int(i)] = {name}
            sources.append(name)
            terms += _mac_terms(layer, layer_macs(layer), inputs[name][0], name)
        elif kind == "through":
            raw[name] = ins[0]
            if isinstance(layer, layers.DepthwiseConv2D):
                terms.append((layer_macs(layer) / width, inputs[name][0], None))
        elif kind == "merge":
            raw[name] = ins[0]
            for other in ins[1:]:
                for a, b in zip(ins[0], other):
                    ra, rb = find(int(a)), find(int(b))
                    if ra != rb:
                        parent[rb] = ra
        elif kind == "concat":
            raw[name] = np.concatenate(ins)
        else:
            opaque.add(name)
            pinned += ins
            raw[name] = new(width) if width else np.zeros(0, int)
            pinned.append(raw[name])
            if layer_macs(layer):             # its widths stay, so its MACs do
                terms.append((float(layer_macs(layer)), None, None))
    for ref in config["output_layers"]:
        pinned.append(raw[ref[0]])
    for name in keep_layers:
        if name not in sources:
            raise InputError(f"'{name}' is not a conv or dense layer of {model.name}", field="keep_layers")
        pinned.append(raw[name])

    roots = np.array([find(i) for i in range(len(parent))])
    unique, component = np.unique(roots, return_inverse=True)
    fixed = np.zeros(len(unique), bool)
    for ids in pinned:
        fixed[component[ids]] = True
    origin: dict[int, set[str]] = {}
    for i, names in born.items():
        origin.setdefault(int(component[i]), set()).update(names)
    order = {name: i for i, name in enumerate(sources)}
    by_origin: dict[tuple[str, ...], list[int]] = {}
    for c in range(len(unique)):
        if not fixed[c] and c in origin:
            by_origin.setdefault(tuple(sorted(origin[c], key=order.get)), []).append(c)
    keys = sorted(by_origin, key=lambda k: [order[n] for n in k])
    return ChannelGraph({name: component[ids] for name, ids in raw.items()}, inputs, sources, opaque, fixed,
                        [np.array(by_origin[k]) for k in keys], ["+".join(k) for k in keys], terms)


def _mac_terms(layer, macs: int, source: str, name: str) -> list[tuple[float, str | None, str | None]]:
    """``layer_macs`` split into width products: c_in x c_out for convs and dense layers; a separable conv's
    depthwise part is c_in alone."""
    c_in, c_out = int(layer.input_shape[-1]), int(layer.output_shape[-1])
    if isinstance(layer, layers.SeparableConv2D):
        cells = math.prod(int(d) for d in layer.output_shape[1:-1]) * layer.depth_multiplier
        return [(cells * math.prod(layer.kernel_size), source, None), (cells, source, name)]
    return [(macs / (c_in * c_out), source, name)]


# --- saliency ---------------------------------------------------------------------------------------------------

def saliency(model: keras.Model, graph: ChannelGraph, criterion: Criterion, data=None, batches: int = 8,
             teacher=None, alpha: float = 0.5, heatmap_loss: str = "mse", seed: int = 0) -> np.ndarray:
    """(N,) importance of each component; higher stays. ``data``: batches of (images, targets) as
    ``tfpose.data.pipeline.build_dataset`` (or the teacher-view cache) makes them, for the loss criteria."""
    if criterion not in CRITERIA:
        raise ValueError(f"unknown saliency criterion '{criterion}'; choose one of {', '.join(CRITERIA)}")
    if criterion == "random":
        return np.random.default_rng(seed).random(graph.size)
    if criterion in ("bn", "magnitude"):
        return _weight_saliency(model, graph, criterion)
    if data is None:
        raise ValueError(f"the {criterion} criterion needs batches of real crops")
    per_crop = gate_gradients(model, graph, data, batches, teacher, alpha, heatmap_loss)
    if criterion == "fisher":
        return 0.5 * np.mean(per_crop ** 2, axis=0)
    return np.mean(np.abs(per_crop), axis=0)


def _following_batchnorm(graph: ChannelGraph, model: keras.Model, name: str):
    readers = [n for n, ins in graph.inputs.items() if name in ins]
    if len(readers) == 1 and isinstance(model.get_layer(readers[0]), layers.BatchNormalization):
        return model.get_layer(readers[0])
    return None


def _weight_saliency(model: keras.Model, graph: ChannelGraph, criterion: str) -> np.ndarray:
    """Sum over each component's source layers of its BatchNorm scale (``bn``; the filter norm where no BatchNorm
    follows) or of its BatchNorm-folded output filter's L1 norm (``magnitude``)."""
    score = np.zeros(graph.size)
    for name in graph.sources:
        layer = model.get_layer(name)
        norm = _following_batchnorm(graph, model, name)
        scale = np.ones(int(layer.output_shape[-1]))
        if norm is not None:
            gamma = norm.gamma.numpy() if norm.scale else 1.0
            scale = np.abs(gamma) / np.sqrt(norm.moving_variance.numpy() + norm.epsilon)
        if criterion == "bn" and norm is not None:
            values = scale
        else:
            values = _filter_l1(layer) * scale
        np.add.at(score, graph.channels[name], values)
    return score


def _filter_l1(layer) -> np.ndarray:
    """(C_out,) L1 norm of each output channel's weights."""
    if isinstance(layer, layers.SeparableConv2D):
        kernel = layer.pointwise_kernel.numpy()
    else:
        kernel = layer.kernel.numpy()
        if isinstance(layer, layers.Conv2DTranspose):        # (kh, kw, C_out, C_in)
            kernel = np.swapaxes(kernel, -1, -2)
    return np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)


def gated_model(model: keras.Model, graph: ChannelGraph, batch: int) -> tuple[keras.Model, dict[str, str]]:
    """A copy of ``model`` with a ``ChannelGate`` before every conv / dense layer that reads a prunable channel,
    and {gate name: the layer whose output it gates}."""
    config = model.get_config()
    gates, entries = {}, []
    for entry in config["layers"]:
        name = entry["name"]
        if name in graph.sources and not graph.fixed[graph.channels[graph.inputs[name][0]]].all():
            ref = entry["inbound_nodes"][0][0]
            gate_name = f"{name}_saliency_gate"
            gate = keras.layers.serialize(ChannelGate(batch, len(graph.channels[ref[0]]), name=gate_name))
            gate.update(name=gate_name, inbound_nodes=[[list(ref)]])
            entries.append(gate)
            entry["inbound_nodes"] = [[[gate_name, 0, 0, *ref[3:]]]]
            gates[gate_name] = ref[0]
        entry.pop("build_config", None)
        entries.append(entry)
    config["layers"] = entries

    def weights(name):
        if name in gates:
            return [np.ones((batch, len(graph.channels[gates[name]])), np.float32)]
        return model.get_layer(name).get_weights()

    return rebuild(config, weights), gates


def gate_gradients(model: keras.Model, graph: ChannelGraph, data, batches: int, teacher=None, alpha: float = 0.5,
                   heatmap_loss: str = "mse") -> np.ndarray:
    """(crops, N) per crop, the loss's derivative to one gate per component shared by every layer that reads it:
    the first-order change of that crop's loss were the component removed. The loss is the Distiller's (ground
    truth, and the teacher when there is one), on the model in inference mode, as it is deployed."""
    from tfpose.distill.distiller import Distiller

    batches_seen = list(data.take(batches))
    if not batches_seen:
        raise ValueError("the saliency data yielded no batch")
    batch = max(int(images.shape[0]) for images, _ in batches_seen)
    gated, gates = gated_model(model, graph, batch)
    distiller = Distiller(gated, teacher, alpha if teacher is not None else 0.0, heatmap_loss=heatmap_loss)
    variables = [gated.get_layer(g).gate for g in gates]

    @tf.function(reduce_retracing=True)
    def step(images, targets):
        with tf.GradientTape() as tape:
            loss = distiller._loss(images, targets, training=False)[0]   # noqa: SLF001 - the train step's own loss
        return tape.gradient(loss, variables)

    out = []
    for images, targets in batches_seen:
        n = int(images.shape[0])
        per_crop = np.zeros((n, graph.size))
        for gate_name, grad in zip(gates, step(images, targets)):
            # the loss is a mean over the batch: n x its gradient is each crop's own
            np.add.at(per_crop, (slice(None), graph.channels[gates[gate_name]]), n * grad.numpy()[:n])
        out.append(per_crop)
    return np.concatenate(out)


# --- allocation -------------------------------------------------------------------------------------------------

def _uniform_counts(sizes: np.ndarray, ratio: float, divisor: int, minimum: np.ndarray) -> np.ndarray:
    return np.clip(np.round(ratio * sizes / divisor) * divisor, minimum, sizes)


def allocate(graph: ChannelGraph, scores: np.ndarray, target_macs: float | None = None, ratio: float | None = None,
             allocation: Allocation = "global", divisor: int = 8) -> tuple[np.ndarray, float | None]:
    """(N,) bool components to keep, and the uniform keep fraction (None for global allocation). Every group
    keeps at least ``divisor`` channels (all of a smaller one); each ranks its own components by ``scores``."""
    if (target_macs is None) == (ratio is None):
        raise ValueError("give either target_macs or ratio")
    if divisor < 1:
        raise ValueError(f"divisor must be at least 1, got {divisor}")
    sizes = np.array([len(c) for c in graph.groups], float)
    minimum = np.minimum(sizes, divisor)
    macs = graph.group_macs()
    if ratio is not None:
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"the channel keep ratio must be in (0, 1], got {ratio}")
        kept = _uniform_counts(sizes, ratio, divisor, minimum)
    elif macs(minimum) > target_macs:
        raise ValueError(f"{target_macs / 1e9:.4f} GMAC is out of reach: the narrowest model this allows "
                         f"({divisor} channels per group) takes {macs(minimum) / 1e9:.4f}")
    elif allocation == "uniform":
        low, high = 0.0, 1.0
        for _ in range(40):
            mid = (low + high) / 2
            fits = macs(_uniform_counts(sizes, mid, divisor, minimum)) <= target_macs
            low, high = (mid, high) if fits else (low, mid)
        ratio = low
        kept = _uniform_counts(sizes, ratio, divisor, minimum)
    elif allocation == "global":
        kept = _global_counts(graph, scores, target_macs, divisor, sizes, minimum, macs)
    else:
        raise ValueError(f"unknown allocation '{allocation}'; choose global or uniform")
    return keep_top(graph, scores, kept), ratio


def keep_top(graph: ChannelGraph, scores: np.ndarray, kept: Sequence[int]) -> np.ndarray:
    """(N,) bool: the fixed components and the ``kept[g]`` highest-scoring components of each group g."""
    keep = graph.fixed.copy()
    for comps, k in zip(graph.groups, np.asarray(kept, int)):
        order = comps[np.argsort(-scores[comps], kind="stable")]
        keep[order[:k]] = True
    return keep


def _global_counts(graph, scores, target, divisor, sizes, minimum, macs) -> np.ndarray:
    """Greedy: remove the chunk (down to the next multiple of ``divisor``) whose summed score per MAC saved is the
    least, until the MACs reach ``target``."""
    ranked = [np.sort(scores[c]) for c in graph.groups]
    kept = sizes.copy()
    now = macs(kept)
    while now > target:
        best, best_value = None, np.inf
        for g in range(len(sizes)):
            chunk = min(int(kept[g]) % divisor or divisor, int(kept[g] - minimum[g]))
            if chunk <= 0:
                continue
            trial = kept.copy()
            trial[g] -= chunk
            saved = now - macs(trial)
            if saved <= 0:
                continue
            gone = int(sizes[g] - kept[g])
            value = ranked[g][gone:gone + chunk].sum() / saved
            if value < best_value:
                best, best_value, best_macs = g, value, now - saved
        if best is None:
            break
        kept[best] -= min(int(kept[best]) % divisor or divisor, int(kept[best] - minimum[best]))
        now = best_macs
    return kept


# --- rebuild ----------------------------------------------------------------------------------------------------

def prune_graph(model: keras.Model, graph: ChannelGraph, keep: np.ndarray) -> keras.Model:
    """The narrower model: each conv / dense layer with its surviving filters, every layer's weights sliced to its
    surviving input and output channels. ``model`` is untouched."""
    config = model.get_config()
    for entry in config["layers"]:
        entry.pop("build_config", None)       # the old input widths: Keras would build the layer for them
        name = entry["name"]
        if name in graph.sources:
            key = "units" if isinstance(model.get_layer(name), layers.Dense) else "filters"
            entry["config"][key] = graph.width(name, keep)

    def weights(name):
        layer = model.get_layer(name)
        if name in graph.opaque:
            return layer.get_weights()
        ins = graph.inputs[name]
        return _sliced(layer, keep[graph.channels[ins[0]]] if ins else None, keep[graph.channels[name]])

    return rebuild(config, weights)


def _sliced(layer, c_in: np.ndarray | None, c_out: np.ndarray) -> list[np.ndarray]:
    """``layer``'s weights restricted to the input channels ``c_in`` and output channels ``c_out`` (bool masks)."""
    w = layer.get_weights()
    if not w:
        return w
    if isinstance(layer, layers.SeparableConv2D):    # depthwise (kh, kw, C_in, m), pointwise (1, 1, C_in m, C_out)
        rows = np.repeat(c_in, layer.depth_multiplier)
        return [w[0][:, :, c_in], w[1][:, :, rows][..., c_out], *[b[c_out] for b in w[2:]]]
    if isinstance(layer, layers.DepthwiseConv2D):    # (kh, kw, C, 1)
        return [w[0][:, :, c_out], *[b[c_out] for b in w[1:]]]
    if isinstance(layer, layers.Conv2DTranspose):    # (kh, kw, C_out, C_in)
        return [w[0][:, :, c_out][..., c_in], *[b[c_out] for b in w[1:]]]
    if isinstance(layer, layers.Conv2D):             # (kh, kw, C_in, C_out)
        return [w[0][:, :, c_in][..., c_out], *[b[c_out] for b in w[1:]]]
    if isinstance(layer, layers.Dense):              # (C_in, C_out)
        return [w[0][c_in][:, c_out], *[b[c_out] for b in w[1:]]]
    if isinstance(layer, layers.BatchNormalization):
        return [v[c_out] for v in w]
    return w


# --- the stage --------------------------------------------------------------------------------------------------

@dataclass
class ChannelPruneResult:
    model: keras.Model                      # narrower, plain layers; not fine-tuned yet
    criterion: str
    allocation: str
    macs_before: int
    macs_after: int                         # tfpose.flops.count_macs of the rebuilt model
    ratio: float | None                     # the uniform keep fraction, when allocation is uniform
    widths: dict[str, tuple[int, int]]      # group (its source layers) -> (channels before, after)
    removed: dict[str, list[int]]           # layer -> indices of its output channels that were removed

    def summary(self) -> dict:
        return {"criterion": self.criterion, "allocation": self.allocation, "macs_before": self.macs_before,
                "macs_after": self.macs_after, "ratio": self.ratio,
                "widths": {k: list(v) for k, v in self.widths.items()}}


def structured_prune(model: keras.Model, target_macs: float | None = None, ratio: float | None = None,
                     criterion: Criterion = "fisher", allocation: Allocation = "global", data=None, batches: int = 8,
                     teacher=None, alpha: float = 0.5, heatmap_loss: str = "mse", divisor: int = 8,
                     keep_layers: Sequence[str] = (), seed: int = 0) -> ChannelPruneResult:
    """Remove whole channels of ``model`` down to ``target_macs`` multiply-adds (batch 1) or to ``ratio`` of every
    group's channels (uniform), ranked by ``criterion`` (see the module docstring); ``model`` is untouched.
    ``data``/``batches``/``teacher``/``alpha``/``heatmap_loss``: the loss criteria's real batches and loss."""
    from tfpose.flops import count_macs

    if ratio is not None:
        allocation = "uniform"
    if allocation == "global" and criterion not in LOSS_CRITERIA:
        raise ValueError(f"global allocation compares saliency across layers, which only the loss criteria "
                         f"({', '.join(LOSS_CRITERIA)}) allow; '{criterion}' ranks within a layer: use uniform")
    graph = channel_graph(model, keep_layers)
    scores = saliency(model, graph, criterion, data, batches, teacher, alpha, heatmap_loss, seed)
    keep, ratio = allocate(graph, scores, target_macs, ratio, allocation, divisor)
    pruned = prune_graph(model, graph, keep)
    widths = {name: (len(c), int(keep[c].sum())) for name, c in zip(graph.group_names, graph.groups)}
    removed = {name: np.flatnonzero(~keep[ids]).tolist() for name, ids in graph.channels.items()
               if not keep[ids].all()}
    return ChannelPruneResult(pruned, criterion, allocation, count_macs(model), count_macs(pruned), ratio, widths,
                              removed)


def report_markdown(result: ChannelPruneResult) -> str:
    """MACs before and after, and each group's width."""
    lines = [f"Channel pruning ({result.criterion}, {result.allocation} allocation"
             + (f", keep ratio {result.ratio:.3f}" if result.ratio is not None else "") + "): "
             f"{result.macs_before / 1e9:.4f} -> {result.macs_after / 1e9:.4f} GMAC", "",
             "| channels born at | before | after |", "|---|---|---|"]
    lines += [f"| {name} | {a} | {b} |" for name, (a, b) in result.widths.items()]
    return "\n".join(lines) + "\n"
