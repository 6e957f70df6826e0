#!/usr/bin/python3
"""Export one PyTorch ConvTranspose{1,2,3}d layer to a convtranspose model file.

The model file is safetensors (interface contract, section 3): tensors
`weight` ([Cin, Cout/groups, k...], float32) and `bias` ([Cout], when the
layer has one), and the hyper-parameters as strings in `__metadata__`:
`stride`, `padding`, `output_padding`, `dilation` as JSON lists with one
value per axis ("[1,2,2]") and `groups` as an integer.

Three sources are accepted:

  * a module, from Python:         export_layer(module, "out.safetensors")
  * a state_dict file (.pt/.pth):  convtranspose-export ckpt.pt out.safetensors
                                       --layer decoder.up --stride 2 --padding 1
    A state_dict holds tensors only, so the hyper-parameters that the weight
    shape cannot tell come from the options (PyTorch's defaults otherwise).
  * a whole pickled model (torch.save(model)):
                                   convtranspose-export model.pt out.safetensors
                                       --layer decoder.up
    The hyper-parameters are read from the module.  Unpickling needs the
    model's own classes to be importable (set PYTHONPATH).

Weight-normalised layers are folded into a plain weight, in both forms:
torch.nn.utils.weight_norm's `weight_g` / `weight_v` and the parametrizations
form `parametrizations.weight.original0` (g) / `original1` (v).  In both,
weight = g * v / ||v||, the norm taken over every axis along which g has
size 1 (every axis but 0 for the default dim=0).  Modules compute their
weight with their own hook or parametrization, exactly as forward() does.
"""

import argparse
import json
import os
import pickle
import sys

import torch
from torch.nn.utils.weight_norm import WeightNorm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ctexport.safetensors_io import save_file  # noqa: E402

__all__ = ["export_layer", "export_state_dict", "export_file", "main"]

CONV_TYPES = (torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d,
              torch.nn.ConvTranspose3d)

# Per-axis hyper-parameters and their PyTorch defaults.
AXIS_PARAMS = {"stride": 1, "padding": 0, "output_padding": 0, "dilation": 1}


class ExportError(Exception):
    """A checkpoint or layer that cannot be exported; the message says why."""


def _per_axis(value, dims, key):
    """Expand an int or a sequence to a list with one int per spatial axis."""
    values = [value] if isinstance(value, int) else list(value)
    if len(values) == 1:
        values = values * dims
    if len(values) != dims or not all(isinstance(v, int) for v in values):
        need = "1 integer" if dims == 1 else f"1 or {dims} integers"
        raise ExportError(f"{key}: need {need}, got {value!r}")
    return values


def _write(path, weight, bias, hyper):
    """Validate a layer like PyTorch does and write it to `path`.

    weight: tensor [Cin, Cout/groups, k...]; bias: tensor [Cout] or None;
    hyper: dict with the AXIS_PARAMS keys (int or sequence) and `groups`.
    """
    weight = weight.detach().to(torch.float32).cpu().contiguous()
    dims = weight.dim() - 2
    if dims not in (1, 2, 3):
        raise ExportError(f"weight has rank {weight.dim()}; "
                          "ConvTranspose1d/2d/3d weights have rank 3, 4 or 5")
    groups = hyper.get("groups", 1)
    if not isinstance(groups, int) or groups < 1 or weight.shape[0] % groups:
        raise ExportError(f"groups={groups!r} does not divide "
                          f"in_channels={weight.shape[0]}")
    cout = weight.shape[1] * groups
    axes = {k: _per_axis(hyper.get(k, d), dims, k)
            for k, d in AXIS_PARAMS.items()}
    for s, p, op, d in zip(*(axes[k] for k in AXIS_PARAMS)):
        if s < 1 or d < 1 or p < 0 or op < 0:
            raise ExportError(f"invalid hyper-parameters {axes}")
        if op >= max(s, d):
            raise ExportError("output_padding must be smaller than stride or "
                              f"dilation (PyTorch's rule): {axes}")
    tensors = {"weight": weight}
    if bias is not None:
        bias = bias.detach().to(torch.float32).cpu().contiguous()
        if list(bias.shape) != [cout]:
            raise ExportError(f"bias shape {list(bias.shape)} != [{cout}] "
                              "(out_channels)")
        tensors["bias"] = bias
    metadata = {k: json.dumps(v, separators=(",", ":")) for k, v in axes.items()}
    metadata["groups"] = str(groups)
    save_file(tensors, path, metadata)


def _fold_weight_norm(g, v):
    """weight = g * v / ||v||, the norm over every axis where g has size 1."""
    g = g.detach().to(torch.float64)
    v = v.detach().to(torch.float64)
    if g.dim() not in (0, v.dim()):
        raise ExportError(f"weight_g shape {list(g.shape)} does not match "
                          f"weight_v shape {list(v.shape)}")
    axes = [a for a in range(v.dim()) if g.dim() == 0 or g.shape[a] == 1]
    norm = v.pow(2).sum(dim=axes, keepdim=True).sqrt()
    return (g * v / norm).to(torch.float32)


def _module_weight(module):
    """The weight a module's forward() uses, weight norm included."""
    if torch.nn.utils.parametrize.is_parametrized(module, "weight"):
        return module.weight  # evaluates the registered parametrization
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, WeightNorm) and hook.name == "weight":
            # The hook refreshes `weight` only in forward(); a loaded
            # state_dict may have changed weight_g / weight_v since.
            return hook.compute_weight(module)
    return module.weight


def export_layer(module, path):
    """Write the nn.ConvTranspose{1,2,3}d `module` to the model file `path`."""
    if not isinstance(module, CONV_TYPES):
        raise ExportError(f"{type(module).__name__} is not a ConvTranspose1d, "
                          "2d or 3d layer")
    if module.padding_mode != "zeros":
        raise ExportError(f"padding_mode={module.padding_mode!r}: only "
                          "'zeros' is supported")
    hyper = {k: getattr(module, k) for k in AXIS_PARAMS}
    hyper["groups"] = module.groups
    _write(path, _module_weight(module), module.bias, hyper)


def _state_dict_weight(state, prefix):
    """The weight of layer `prefix` (with its dot, or "") in a state_dict."""
    forms = (("weight",),
             ("weight_g", "weight_v"),
             ("parametrizations.weight.original0",
              "parametrizations.weight.original1"))
    for names in forms:
        keys = [prefix + n for n in names]
        if all(k in state for k in keys):
            if len(keys) == 1:
                return state[keys[0]]
            return _fold_weight_norm(state[keys[0]], state[keys[1]])
    return None


def _layer_names(state):
    """Names of the layers of a state_dict whose weight has rank 3 to 5."""
    names = []
    for key, value in state.items():
        for tail in ("weight", "weight_v", "parametrizations.weight.original1"):
            if (key == tail or key.endswith("." + tail)) \
                    and torch.is_tensor(value) and 3 <= value.dim() <= 5:
                names.append(key[:len(key) - len(tail)].rstrip("."))
    return names


def _pick_layer(candidates, layer, what):
    """The layer to export: `layer`, or the only candidate when it is None."""
    if layer is not None:
        if layer not in candidates:
            raise ExportError(f"no layer {layer!r} in the {what}; layers: "
                              f"{', '.join(candidates) or 'none'}")
        return layer
    if len(candidates) != 1:
        raise ExportError(f"the {what} has {len(candidates)} candidate layers "
                          f"({', '.join(candidates) or 'none'}): choose one "
                          "with --layer")
    return candidates[0]


def export_state_dict(state, path, layer=None, **hyper):
    """Write layer `layer` of the state_dict `state` to the model file `path`.

    `hyper` gives the hyper-parameters a state_dict does not hold (stride,
    padding, output_padding, dilation: int or sequence; groups: int);
    missing ones take PyTorch's defaults.  `layer` may be omitted when the
    state_dict holds a single layer.
    """
    layer = _pick_layer(_layer_names(state), layer, "state_dict")
    prefix = layer + "." if layer else ""
    weight = _state_dict_weight(state, prefix)
    if weight is None:
        raise ExportError(f"layer {layer!r}: no weight, weight_g/weight_v or "
                          "parametrizations.weight.original0/original1")
    _write(path, weight, state.get(prefix + "bias"), hyper)


def export_file(source, path, layer=None, **hyper):
    """Export a layer of the checkpoint file `source` to the model file `path`.

    `source` is what torch.save wrote: a whole model (hyper-parameters from
    the module; `hyper` must be empty) or a state_dict, possibly nested under
    a "state_dict", "model_state_dict" or "model" key (then `hyper` applies).
    """
    obj = torch.load(source, map_location="cpu")
    if isinstance(obj, torch.nn.Module):
        if hyper:
            raise ExportError("a whole model knows its own hyper-parameters: "
                              "drop "
                              + ", ".join("--" + k.replace("_", "-")
                                          for k in hyper))
        convs = [n for n, m in obj.named_modules() if isinstance(m, CONV_TYPES)]
        export_layer(obj.get_submodule(_pick_layer(convs, layer, "model")), path)
        return
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise ExportError(f"holds a {type(obj).__name__}, neither a model "
                          "nor a state_dict")
    export_state_dict(obj, path, layer, **hyper)


def _int_list(text):
    """Parse "2" or "1,2,2" (the convtranspose CLI's syntax)."""
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: need an integer or a comma list such as 1,2,2") from None


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="convtranspose-export",
        description="Export one ConvTranspose1d/2d/3d layer of a PyTorch "
                    "checkpoint (a state_dict or a whole model saved with "
                    "torch.save) to a convtranspose .safetensors model file.")
    parser.add_argument("checkpoint", help="file written by torch.save")
    parser.add_argument("output", help="model file to write (.safetensors)")
    parser.add_argument("--layer", help="layer name, e.g. decoder.ups.0 "
                        "(optional when there is only one layer)")
    group = parser.add_argument_group(
        "hyper-parameters of a state_dict's layer (a whole model knows its "
        "own); one integer for every axis or one per axis, e.g. 1,2,2")
    for key in AXIS_PARAMS:
        group.add_argument("--" + key.replace("_", "-"), type=_int_list,
                           dest=key)
    group.add_argument("--groups", type=int)
    args = parser.parse_args(argv)
    hyper = {k: getattr(args, k) for k in (*AXIS_PARAMS, "groups")
             if getattr(args, k) is not None}
    tmp = args.output + ".tmp"
    try:
        export_file(args.checkpoint, tmp, args.layer, **hyper)
        os.replace(tmp, args.output)
    except (ExportError, OSError, RuntimeError, pickle.UnpicklingError) as e:
        fail = str(e)
    except (AttributeError, ImportError) as e:  # a class the pickle names
        fail = f"{e} (is the model's code on PYTHONPATH?)"
    else:
        return 0
    if os.path.exists(tmp):
        os.remove(tmp)
    print(f"convtranspose-export: {args.checkpoint}: {fail}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
