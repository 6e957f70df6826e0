"""What a checkpoint holds: wrappers, a state_dict's layers and their kinds.

A state_dict maps names to tensors and records no module types, and a
ConvTranspose weight [Cin, Cout/g, k...] looks just like a Conv weight
[Cout, Cin/g, k...].  So a layer's kind is inferred from the state_dict's
structure; the evidence, strongest first:

  1. Its shapes.  A bias has out_channels values: weight.shape[1] * groups
     for a ConvTranspose, weight.shape[0] for a Conv.  When only one fits,
     that is a proof, which no option overrides.
  2. Its name: the last component of the layer's name that is not an index
     (the module's own attribute, or the list that holds it).  "ups",
     "upsample", "up", "deconv", "conv_transpose", ... name a ConvTranspose;
     "conv", "convs1", "conv_pre", "downsample", ... a Conv (HiFi-GAN: ups.N,
     and conv_pre, conv_post, resblocks.*.convs*).  Outer components are not
     read: an "up" block holds ordinary convolutions as well.
  3. The channel chain: a layer takes in what the entry before it in the
     state_dict puts out, and puts out what the next one takes in (a norm
     layer's weight [C] counts as C in, C out).  Only a layer with
     Cin != Cout can be told apart this way, since a square one chains alike
     in both readings.

Names and chains are conventions, not proofs: they decide only when they
do not contradict each other, and --assume-transposed overrides them.
"""

import re
from collections.abc import Mapping

import torch

from ctexport.kinds import (REGULAR, TRANSPOSED, ExportError, label,
                            name_list, not_transposed, regular_name,
                            transposed_name)

KINDS = (TRANSPOSED, REGULAR)

# The tensors holding a layer's weight, as Module.state_dict names them:
# plain; torch.nn.utils.weight_norm's g and v; parametrizations' original0
# (g) and original1 (v).  The last of each has the weight's shape.
WEIGHT_FORMS = (("weight",),
                ("weight_g", "weight_v"),
                ("parametrizations.weight.original0",
                 "parametrizations.weight.original1"))

# Every tensor name a layer's own key can end with, longest first so that
# "weight_g" is not read as "weight" plus something.
_TAILS = ("parametrizations.weight.original0",
          "parametrizations.weight.original1",
          "num_batches_tracked", "running_mean", "running_var",
          "weight_g", "weight_v", "weight", "bias")

# Wrapper keys of common training checkpoints, in the order a wrapper is
# preferred when a checkpoint holds several state_dicts (HiFi-GAN's g_*
# files: {"generator": ...}; Lightning: "state_dict"; BasicSR: "params_ema"
# beside "params").
WRAPPERS = ("generator", "state_dict", "model_state_dict", "model", "net_g",
            "netG", "params_ema", "params", "ema", "state", "net", "network",
            "module", "weights")

# Key prefixes that wrappers of the model add to every key: DataParallel /
# DistributedDataParallel ("module.") and torch.compile ("_orig_mod.").
_KEY_PREFIXES = ("module.", "_orig_mod.")

# Words of a layer's name (lower case, split at "_", digits and dots).
_TRANSPOSED_WORDS = {"deconv", "deconvs", "deconvolution", "transpose",
                     "transposed", "convtranspose", "convtrans", "tconv",
                     "tconvs", "convt"}
_UP_WORDS = {"up", "ups", "upsample", "upsamples", "upsampler",
             "upsamplers", "upsampling"}
_REGULAR_WORDS = {"conv", "convs", "convolution", "down", "downs",
                  "downsample", "downsampler", "downsampling"}
# One word for "upsample, then convolve" (e.g. ESRGAN's upconv1, a Conv2d
# after an interpolation) as often as for a transposed convolution.
_MIXED_WORDS = {"upconv", "upconvs"}


class Layer:
    """A state_dict layer with a rank 3-5 weight: its name and shapes."""

    def __init__(self, name, shape, bias):
        self.name = name
        self.shape = shape  # the weight's (v's, when weight-normed)
        self.bias = bias    # the bias's shape, or None

    @property
    def dims(self):
        return len(self.shape) - 2


class Verdict:
    """What a state_dict tells of a layer.

    kind: TRANSPOSED, REGULAR or None (cannot tell); proven: settled by the
    layer's shapes; why: the evidence, for messages.
    """

    def __init__(self, kind, proven, why):
        self.kind = kind
        self.proven = proven
        self.why = why


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def _strip(key, tail):
    """The layer prefix of `key` if it ends with tensor name `tail`."""
    if key == tail:
        return ""
    if key.endswith("." + tail):
        return key[:-len(tail) - 1]
    return None


def _prefix(key):
    for tail in _TAILS:
        prefix = _strip(key, tail)
        if prefix is not None:
            return prefix
    return key.rpartition(".")[0]


class Scan:
    """The layers of a state_dict and its chain of channel-bearing entries.

    layers: name -> Layer, for every weight of rank 3 to 5 in any of the
    WEIGHT_FORMS.  chain: (name, Layer or channel count) in the order of
    each entry's first key, the layers and the norm-like entries (a rank 1
    weight or a running_mean: C channels in, C out).
    """

    def __init__(self, state):
        self.state = state
        first = {}
        for i, key in enumerate(state):
            if isinstance(key, str):
                first.setdefault(_prefix(key), i)
        self.layers = {}
        chain = []
        for name in sorted(first, key=first.get):
            node = self._node(name)
            if node is not None:
                chain.append((name, node))
                if isinstance(node, Layer):
                    self.layers[name] = node
        self.chain = chain
        self.position = {name: i for i, (name, _) in enumerate(chain)}

    def _tensor(self, key):
        value = self.state.get(key)
        return value if torch.is_tensor(value) else None

    def _node(self, name):
        for form in WEIGHT_FORMS:
            weight = self._tensor(_join(name, form[-1]))
            if weight is not None and 3 <= weight.dim() <= 5 \
                    and all(self._tensor(_join(name, n)) is not None
                            for n in form):
                bias = self._tensor(_join(name, "bias"))
                return Layer(name, list(weight.shape),
                             None if bias is None else list(bias.shape))
        for tail in ("weight", "running_mean"):
            value = self._tensor(_join(name, tail))
            if value is not None and value.dim() == 1:
                return int(value.shape[0])
        return None

    def weight(self, name):
        """The tensors of layer `name`'s weight form: (weight,) or (g, v)."""
        for form in WEIGHT_FORMS:
            tensors = [self._tensor(_join(name, n)) for n in form]
            if all(t is not None for t in tensors):
                return tensors
        return None

    def bias(self, name):
        return self._tensor(_join(name, "bias"))

    def neighbours(self, name):
        i = self.position[name]
        before = self.chain[i - 1] if i > 0 else None
        after = self.chain[i + 1] if i + 1 < len(self.chain) else None
        return before, after


def _fits_transposed(a, b, n, groups):
    """Whether bias size n is a ConvTranspose's out_channels, b * groups,
    for weight [a, b, ...] (any groups dividing a when groups is None)."""
    if groups:
        return a % groups == 0 and n == b * groups
    return n % b == 0 and a % (n // b) == 0


def _by_shapes(layer, groups, given=True):
    """A proof from the bias's size, or None when it fits both kinds.

    groups: the layer's groups (None: any); given: whether the user gave
    them, or they are the default 1 that the file would get.
    """
    if layer.bias is None or len(layer.bias) != 1:
        return None
    a, b, n = layer.shape[0], layer.shape[1], layer.bias[0]
    if min(a, b, n) < 1:
        return None  # invalid either way; writing the file says why
    transposed = _fits_transposed(a, b, n, groups)
    regular = n == a and (not groups or a % groups == 0)
    if transposed == regular:
        return None
    t, r = transposed_name(layer.dims), regular_name(layer.dims)
    if transposed:
        return Verdict(TRANSPOSED, True,
                       f"its bias [{n}] is weight.shape[1] * groups, a {t}'s "
                       f"out_channels (a {r}'s would be weight.shape[0] = "
                       f"{a})")
    times = f"{b * groups}" if groups else f"{b} * groups"
    why = (f"its bias [{n}] is weight.shape[0], a {r}'s out_channels (a "
           f"{t}'s would be weight.shape[1] * groups = {times})")
    if not given and _fits_transposed(a, b, n, None):
        why += f"; if it is a {t} with groups {n // b}, pass --groups"
    return Verdict(REGULAR, True, why)


def _by_name(name):
    """(kind, word) from the layer's own name, or None."""
    parts = [p for p in name.split(".") if not p.isdigit()]
    if not parts:
        return None
    part = parts[-1]
    words = set(re.findall(r"[a-z]+", part.lower()))
    if words & _TRANSPOSED_WORDS:
        return TRANSPOSED, part
    if words & _MIXED_WORDS or (words & _UP_WORDS and words & _REGULAR_WORDS):
        return None
    if words & _UP_WORDS:
        return TRANSPOSED, part
    if words & _REGULAR_WORDS:
        return REGULAR, part
    return None


def _io(node, kind, groups=None):
    """(in, out) channels of a chain entry read as `kind`.

    Unknown groups count as 1; a bias gives a ConvTranspose's out_channels
    whatever its groups.
    """
    if isinstance(node, int):
        return node, node
    a, b = node.shape[0], node.shape[1]
    g = groups or 1
    if kind == TRANSPOSED:
        return a, node.bias[0] if node.bias and len(node.bias) == 1 else b * g
    return b * g, a


def _kinds(node):
    """The kinds a neighbour can be: its proven one, or both."""
    if isinstance(node, int):
        return (None,)
    proof = _by_shapes(node, None)  # its groups are unknown
    return (proof.kind,) if proof else KINDS


def _by_chain(scan, layer, groups):
    """(kind, why) from the channels of the layer's neighbours, or None."""
    ins = {k: _io(layer, k, groups)[0] for k in KINDS}
    outs = {k: _io(layer, k, groups)[1] for k in KINDS}
    if ins[TRANSPOSED] == ins[REGULAR]:
        return None  # Cin = Cout: both readings chain alike
    before, after = scan.neighbours(layer.name)
    votes = []
    # The neighbour before must put out what this layer takes in, the one
    # after take in what it puts out: (neighbour, its side, ours, wording).
    for neighbour, side, ours, says in ((before, 1, ins, "before it puts out"),
                                        (after, 0, outs, "after it takes in")):
        if not neighbour:
            continue
        name, node = neighbour
        theirs = {_io(node, k)[side] for k in _kinds(node)}
        fits = [k for k in KINDS if ours[k] in theirs]
        if len(fits) == 1:
            votes.append((fits[0], f"{name!r} {says} {ours[fits[0]]} channels"))
    if len({k for k, _ in votes}) != 1:
        return None
    return votes[0][0], " and ".join(why for _, why in votes)


def classify(scan, name, groups=None):
    """The Verdict on layer `name` of `scan` (groups: the --groups given)."""
    layer = scan.layers[name]
    proof = _by_shapes(layer, groups or 1, groups is not None)
    if proof:
        return proof
    t, r = transposed_name(layer.dims), regular_name(layer.dims)
    word = {TRANSPOSED: t, REGULAR: r}
    named = _by_name(name)
    chained = _by_chain(scan, layer, groups)
    bias = f"bias {layer.bias}" if layer.bias else "no bias"
    fits = (f"its shapes (weight {layer.shape}, {bias}) fit a {t} and a {r} "
            "alike")
    if named and chained and named[0] != chained[0]:
        return Verdict(None, False,
                       f"its name {named[1]!r} suggests a {word[named[0]]} "
                       f"but its neighbours a {word[chained[0]]} "
                       f"({chained[1]})")
    if named:
        return Verdict(named[0], False, f"by its name {named[1]!r} ({fits})")
    if chained:
        return Verdict(chained[0], False,
                       f"by the channel chain: {chained[1]} ({fits})")
    return Verdict(None, False, f"{fits} and neither its name nor its "
                   "neighbours' channels tell")


def refusal(name, dims, verdict):
    """The message refusing a layer whose verdict is not TRANSPOSED."""
    t = transposed_name(dims)
    if verdict.kind == REGULAR:
        message = f"{not_transposed(name, dims)}: {verdict.why}"
        if verdict.proven:
            return message
        return (f"{message}; a state_dict records no layer types, so if it "
                f"is a {t}, pass --assume-transposed")
    return (f"cannot tell whether {label(name)} is a {t} or a "
            f"{regular_name(dims)} (a state_dict records no layer types): "
            f"{verdict.why}; if it is a {t}, pass --assume-transposed")


def _is_state_dict(obj):
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items())


def _holds_layers(obj, depth=3):
    """Whether `obj` is a model or a (possibly nested) state_dict with a
    rank 3-5 tensor; optimizer states (int keys) are not."""
    if isinstance(obj, torch.nn.Module):
        return True
    if not isinstance(obj, Mapping) or depth == 0:
        return False
    for key, value in obj.items():
        if not isinstance(key, str):
            continue
        if torch.is_tensor(value) and 3 <= value.dim() <= 5:
            return True
        if _holds_layers(value, depth - 1):
            return True
    return False


def unwrap(obj, layer):
    """The model or state_dict inside the checkpoint object `obj`.

    Returns (inner, layer, wrappers): `layer` less any wrapper it was
    prefixed with, and wrappers a description of the way in ("" when
    none), for messages.  A wrapper named as the first component of
    `layer` is the one taken.
    """
    steps = []
    while isinstance(obj, Mapping) and not _is_state_dict(obj):
        inner = [k for k, v in obj.items()
                 if isinstance(k, str) and _holds_layers(v)]
        if not inner:
            break
        head = layer.split(".")[0] if layer else None
        if head in inner:
            key = head
            layer = layer[len(head) + 1:]
        elif len(inner) == 1:
            key = inner[0]
        else:
            key = next((k for k in WRAPPERS if k in inner), None)
            if key is None:
                raise ExportError(
                    f"holds several models or state_dicts "
                    f"({name_list(inner)}): name the one to use before the "
                    f"layer, e.g. --layer {inner[0]}.LAYER")
        steps.append(f"under {key!r}")
        obj = obj[key]
    if isinstance(obj, (torch.nn.DataParallel,
                        torch.nn.parallel.DistributedDataParallel)):
        steps.append(f"inside a {type(obj).__name__}")
        obj = obj.module
        layer = _drop_prefix(layer, "module.")
    elif isinstance(obj, Mapping):
        for prefix in _KEY_PREFIXES:
            while len(obj) and all(isinstance(k, str) and k.startswith(prefix)
                                   for k in obj):
                steps.append(f"with keys prefixed {prefix!r}")
                obj = {k[len(prefix):]: v for k, v in obj.items()}
                layer = _drop_prefix(layer, prefix)
    return obj, layer, " ".join(steps)


def _drop_prefix(layer, prefix):
    if layer and layer.startswith(prefix):
        return layer[len(prefix):]
    return layer


def choose(scan, layer, wrappers="", groups=None, assume_transposed=False):
    """The name of the layer of `scan` to export, or ExportError saying why
    there is none: `layer` if it is (or is assumed) a ConvTranspose, else
    the only ConvTranspose layer.  `wrappers` is unwrap()'s description of
    the way to the state_dict, named in messages."""
    where = f"the state_dict {wrappers}".rstrip()
    if layer is not None:
        return _check_named(scan, layer, where, groups, assume_transposed,
                            f"{where}: " if wrappers else "")
    verdicts = {n: classify(scan, n, groups) for n in scan.layers}
    if assume_transposed:
        picked = [n for n, v in verdicts.items()
                  if not (v.proven and v.kind == REGULAR)]
    else:
        picked = [n for n, v in verdicts.items() if v.kind == TRANSPOSED]
    if len(picked) == 1:
        return picked[0]
    if picked:
        return _fail(f"{where} has {len(picked)} ConvTranspose layers "
                     f"({name_list(picked)}): choose one with --layer")
    if not verdicts:
        return _fail(f"{where} has no layer with a weight of rank 3 to 5")
    if len(verdicts) == 1:
        name, verdict = next(iter(verdicts.items()))
        return _fail(f"{where} holds one convolution only; "
                     f"{refusal(name, scan.layers[name].dims, verdict)}")
    regular = [n for n, v in verdicts.items() if v.kind == REGULAR]
    unknown = [n for n, v in verdicts.items() if v.kind is None]
    return _fail(f"{where} has no layer known to be a ConvTranspose: "
                 f"regular convolutions: {name_list(regular)}; of unknown "
                 f"kind: {name_list(unknown)}; to export one as a "
                 "ConvTranspose, pass --layer and --assume-transposed")


def _check_named(scan, layer, where, groups, assume_transposed, context):
    if layer not in scan.layers:
        weight = scan.state.get(_join(layer, "weight"))
        if torch.is_tensor(weight):
            return _fail(f"{context}{label(layer)} has a weight of rank "
                         f"{weight.dim()}; a convolution's has rank 3 to 5")
        transposed = [n for n in scan.layers
                      if classify(scan, n, groups).kind == TRANSPOSED]
        return _fail(f"no layer {layer!r} in {where}; ConvTranspose layers: "
                     f"{name_list(transposed)}; all layers: "
                     f"{name_list(scan.layers)}")
    verdict = classify(scan, layer, groups)
    if verdict.kind == TRANSPOSED or (assume_transposed and not (
            verdict.proven and verdict.kind == REGULAR)):
        return layer
    return _fail(context + refusal(layer, scan.layers[layer].dims, verdict))


def _fail(message):
    raise ExportError(message)
