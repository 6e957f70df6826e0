#!/usr/bin/python3
"""Export one PyTorch ConvTranspose{1,2,3}d layer to a convtranspose model file.

The model file is safetensors (interface contract, section 3): tensors
`weight` ([Cin, Cout/groups, k...], float32) and `bias` ([Cout], when the
layer has one), and the hyper-parameters as strings in `__metadata__`:
`stride`, `padding`, `output_padding`, `dilation` as JSON lists with one
value per axis ("[1,2,2]") and `groups` as an integer.

Four sources are accepted:

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
  * a TorchScript model (torch.jit.save of a scripted or traced model):
    as a whole model; no Python classes are needed.

Only ConvTranspose layers are exported; a regular convolution (whose weight
looks alike) is refused, saying what it is.  A model records each layer's
type; a state_dict does not, so there its structure tells (shapes, names,
channel chain: see checkpoint.py), and a layer it cannot tell is refused
unless --assume-transposed is given.  Training wrappers are looked through:
{"generator": state_dict} (HiFi-GAN), "state_dict", "model", ..., and the
"module." prefix of DataParallel.

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
import zipfile

import torch
from torch.nn.utils.weight_norm import WeightNorm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ctexport import checkpoint, torchscript  # noqa: E402
from ctexport.kinds import (REGULAR, TRANSPOSED, ExportError,  # noqa: E402
                            label, name_list, not_a_layer, not_transposed)
from ctexport.safetensors_io import save_file  # noqa: E402

__all__ = ["export_layer", "export_state_dict", "export_file", "main",
           "ExportError"]

CONV_TYPES = (torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d,
              torch.nn.ConvTranspose3d)
REGULAR_TYPES = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)

# Per-axis hyper-parameters and their PyTorch defaults.
AXIS_PARAMS = {"stride": 1, "padding": 0, "output_padding": 0, "dilation": 1}


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


def _class_name(module):
    if isinstance(module, torch.jit.ScriptModule):
        return module.original_name
    return type(module).__name__


def _module_kind(module):
    """(TRANSPOSED or REGULAR, dims) for a pickled convolution, else None."""
    for kind, types in ((TRANSPOSED, CONV_TYPES), (REGULAR, REGULAR_TYPES)):
        if isinstance(module, types):
            return kind, len(module.kernel_size)
    return None


def _refusal(name, module, kind):
    """Why `module` (of the given kind) is not exported, or None."""
    if kind is None:
        return not_a_layer(name, _class_name(module))
    if kind[0] == REGULAR:
        return not_transposed(name, kind[1], _class_name(module))
    return None


def export_layer(module, path, name=None):
    """Write the nn.ConvTranspose{1,2,3}d `module` to the model file `path`.

    `name` is the module's name in its model, for messages.
    """
    refused = _refusal(name, module, _module_kind(module))
    if refused:
        raise ExportError(refused)
    if module.padding_mode != "zeros":
        raise ExportError(f"padding_mode={module.padding_mode!r}: only "
                          "'zeros' is supported")
    hyper = {k: getattr(module, k) for k in AXIS_PARAMS}
    hyper["groups"] = module.groups
    _write(path, _module_weight(module), module.bias, hyper)


def _weight_of(tensors):
    """A layer's weight from its Scan.weight() tensors, weight norm folded."""
    return tensors[0] if len(tensors) == 1 else _fold_weight_norm(*tensors)


def export_state_dict(state, path, layer=None, assume_transposed=False,
                      **hyper):
    """Write layer `layer` of the state_dict `state` to the model file `path`.

    `hyper` gives the hyper-parameters a state_dict does not hold (stride,
    padding, output_padding, dilation: int or sequence; groups: int);
    missing ones take PyTorch's defaults.  A state_dict records no layer
    types, so the layer's kind is inferred from the state_dict's structure
    (ctexport.checkpoint): a layer shown to be a regular convolution is
    refused, and so is one of unknown kind unless `assume_transposed`.
    `layer` may be omitted when the state_dict holds a single ConvTranspose
    layer.  Wrappers ({"generator": sd}, {"state_dict": sd}, "module."
    prefixes) are looked through.
    """
    state, layer, wrappers = checkpoint.unwrap(state, layer)
    if not isinstance(state, dict):
        raise ExportError(f"holds a {type(state).__name__}, not a state_dict")
    _export_state(state, path, layer, wrappers, assume_transposed, hyper)


def _export_state(state, path, layer, wrappers, assume_transposed, hyper):
    """export_state_dict() for a state_dict that unwrap() gave."""
    scan = checkpoint.Scan(state)
    layer = checkpoint.choose(scan, layer, wrappers, hyper.get("groups"),
                              assume_transposed)
    _write(path, _weight_of(scan.weight(layer)), scan.bias(layer), hyper)


def _pick_module(model, layer, where, context, kind_of):
    """The name of the submodule of `model` to export (`layer`, or the only
    ConvTranspose); kind_of(module) gives (kind, dims) or None.  `where`
    names the model in messages, `context` prefixes a refusal of `layer`."""
    modules = dict(model.named_modules())
    kinds = {n: kind_of(m) for n, m in modules.items()}
    convs = [n for n, k in kinds.items() if k and k[0] == TRANSPOSED]
    if layer is not None:
        if layer not in modules:
            raise ExportError(f"no layer {layer!r} in {where}; ConvTranspose "
                              f"layers: {name_list(convs)}")
        refused = _refusal(layer, modules[layer], kinds[layer])
        if refused:
            raise ExportError(context + refused)
        return layer
    if len(convs) == 1:
        return convs[0]
    if convs:
        raise ExportError(f"{where} has {len(convs)} ConvTranspose layers "
                          f"({name_list(convs)}): choose one with --layer")
    regular = [n for n, k in kinds.items() if k and k[0] == REGULAR]
    raise ExportError(f"{where} has no ConvTranspose layer (regular "
                      f"convolutions: {name_list(regular)})")


def _no_hyper(hyper, what):
    if hyper:
        raise ExportError(f"{what} knows its own hyper-parameters: drop "
                          + ", ".join("--" + k.replace("_", "-")
                                      for k in hyper))


def _export_model(model, path, layer, wrappers, hyper):
    """Export from a pickled whole model (hyper-parameters from it)."""
    _no_hyper(hyper, "a whole model")
    where = f"the model {wrappers}".rstrip()
    name = _pick_module(model, layer, where, f"{where}: " if wrappers else "",
                        _module_kind)
    export_layer(model.get_submodule(name), path, name)


def _export_torchscript(model, path, layer, wrappers, hyper):
    """Export from a TorchScript model: kinds from the submodules'
    original_name, hyper-parameters from their attributes or graphs."""
    _no_hyper(hyper, "a TorchScript model")
    where = f"the TorchScript model {wrappers}".rstrip()
    name = _pick_module(model, layer, where, f"{where}: " if wrappers else "",
                        torchscript.kind)
    module = dict(model.named_modules())[name]
    params = torchscript.hyper_parameters(module, name)
    scan = checkpoint.Scan(module.state_dict())
    tensors = scan.weight("")
    if tensors is None:
        raise ExportError(f"TorchScript {label(name)} has no weight, "
                          "weight_g/weight_v or parametrizations")
    _write(path, _weight_of(tensors), scan.bias(""), params)


def _load(source):
    """What the file `source` holds (torch.jit.load for TorchScript, which
    torch.load would hand on to it with a warning)."""
    if torchscript.is_torchscript(source):
        try:
            return torch.jit.load(source, map_location="cpu")
        except (RuntimeError, ValueError, zipfile.BadZipFile) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ExportError("a TorchScript file that torch.jit.load "
                              f"cannot read: {first}") from None
    with open(source, "rb"):
        pass  # a missing or unreadable file is told as such, not as below
    try:
        return torch.load(source, map_location="cpu")
    except (RuntimeError, OSError, EOFError, ValueError,
            pickle.UnpicklingError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ExportError("not a checkpoint that torch.load can read "
                          f"({first})") from None


def export_file(source, path, layer=None, assume_transposed=False, **hyper):
    """Export a layer of the checkpoint file `source` to the model file `path`.

    `source` is what torch.save or torch.jit.save wrote: a whole model or a
    TorchScript model (hyper-parameters and layer types from the model;
    `hyper` must be empty), or a state_dict (then `hyper` applies and the
    layer's kind is inferred, see export_state_dict); each possibly inside
    a wrapper ({"generator": ...}, {"state_dict": ...}, DataParallel).
    """
    inner, layer, wrappers = checkpoint.unwrap(_load(source), layer)
    if isinstance(inner, torch.jit.ScriptModule):
        _export_torchscript(inner, path, layer, wrappers, hyper)
    elif isinstance(inner, torch.nn.Module):
        _export_model(inner, path, layer, wrappers, hyper)
    elif isinstance(inner, dict):
        _export_state(inner, path, layer, wrappers, assume_transposed, hyper)
    else:
        raise ExportError(f"holds a {type(inner).__name__}, neither a model "
                          "nor a state_dict")


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
                    "checkpoint (a state_dict, a whole model saved with "
                    "torch.save, or a TorchScript model) to a convtranspose "
                    ".safetensors model file.  Regular convolutions are "
                    "refused.")
    parser.add_argument("checkpoint", help="file written by torch.save or "
                        "torch.jit.save")
    parser.add_argument("output", help="model file to write (.safetensors)")
    parser.add_argument("--layer", help="layer name, e.g. ups.0 (optional "
                        "when there is only one ConvTranspose layer)")
    parser.add_argument("--assume-transposed", action="store_true",
                        help="a state_dict records no layer types: export "
                        "the layer as a ConvTranspose even when its name or "
                        "neighbours do not say it is one (never when its "
                        "shapes prove it is not)")
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
        export_file(args.checkpoint, tmp, args.layer, args.assume_transposed,
                    **hyper)
        os.replace(tmp, args.output)
    except (ExportError, OSError, RuntimeError, pickle.UnpicklingError) as e:
        fail = (str(e).strip().splitlines() or [type(e).__name__])[0]
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
