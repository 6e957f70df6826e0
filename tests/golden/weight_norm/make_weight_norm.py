#!/usr/bin/python3
"""Golden files for weight-normalised layers (model/weight-norm.c folds them).

Run with the system interpreter (Debian's python3-torch + numpy):

    /usr/bin/python3 tests/golden/weight_norm/make_weight_norm.py

torch.nn.utils.weight_norm stores a layer as `weight_g` and `weight_v`
(weight = g * v / ||v||, the norm over every axis but `dim`); PyTorch 2.1's
parametrizations.weight_norm stores the same g and v as
`parametrizations.weight.original0` / `original1` (this torch, 1.13, lacks
it, so those cases rename the pair).  g is drawn at random after the hook is
set, so the folded weight differs from v.  For each case NAME, next to this
script:
  NAME.safetensors  the state_dict (and hyper-parameters in __metadata__)
  NAME.weight.npy   the float32 weight PyTorch's forward uses
  NAME.in.npy       an input, [C, L...]
  NAME.out.npy      the module's float32 output for it
and cases.tsv (NAME, layer prefix or '-', description).  Deterministic: the
same bytes every run.
"""

import os
import sys

import numpy as np
import torch
from torch.nn.utils import weight_norm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tools"))
from ctexport.safetensors_io import save_file  # noqa: E402

torch.set_num_threads(1)
CONV = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d,
        3: torch.nn.ConvTranspose3d}


def case(name, desc, rank, cin, cout, k, in_shape, *, dim=0, prefix=None,
         form="hook", store=torch.float32, **hp):
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    layer = CONV[rank](cin, cout, k, **hp)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen))
        layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen))
    layer = weight_norm(layer, dim=dim)
    with torch.no_grad():
        layer.weight_g.copy_(torch.rand(layer.weight_g.shape, generator=gen) * 2 + 0.5)
        if store != torch.float32:  # what the file holds is what the layer uses
            for p in (layer.weight_g, layer.weight_v, layer.bias):
                p.copy_(p.to(store).to(torch.float32))
    x = torch.randn(in_shape, generator=gen)
    with torch.no_grad():
        y = layer(x.unsqueeze(0)).squeeze(0)
    state = {}
    names = {"weight_g": "weight_g", "weight_v": "weight_v", "bias": "bias"}
    if form == "parametrizations":
        names.update(weight_g="parametrizations.weight.original0",
                     weight_v="parametrizations.weight.original1")
    for key, value in layer.state_dict().items():
        full = names[key] if prefix is None else f"{prefix}.{names[key]}"
        state[full] = value.detach().to(store).contiguous()
    meta = {}
    for key in ("stride", "padding", "output_padding", "dilation"):
        meta[key if prefix is None else f"{prefix}.{key}"] = \
            str(list(getattr(layer, key))).replace(" ", "")
    meta["format"] = "pt"
    base = os.path.join(HERE, name)
    save_file(state, base + ".safetensors", meta)
    np.save(base + ".weight.npy", layer.weight.detach().numpy().astype(np.float32))
    np.save(base + ".in.npy", x.numpy().astype(np.float32))
    np.save(base + ".out.npy", y.numpy().astype(np.float32))
    return f"{name}\t{prefix or '-'}\t{desc}"


def main():
    rows = [
        case("hifigan_dim0_1d", "HiFi-GAN style: weight_norm(ConvTranspose1d(8,4,16,8,4)), "
             "dim=0, layer ups.0 of a checkpoint", 1, 8, 4, 16, [8, 12],
             prefix="ups.0", stride=8, padding=4),
        case("dim1_2d", "weight_norm(..., dim=1): g [1, Cout, 1, 1]", 2, 3, 4, 3,
             [3, 5, 6], dim=1, stride=2, padding=1, output_padding=1),
        case("dim2_1d", "weight_norm(..., dim=2): g [1, 1, k], norm per tap", 1, 3, 2,
             4, [3, 9], dim=2, stride=2),
        case("none_1d", "weight_norm(..., dim=None): scalar g, one norm", 1, 2, 3, 5,
             [2, 7], dim=None, stride=3, padding=1),
        case("param_3d", "parametrizations form (original0/original1), 3d dim=0", 3,
             2, 3, (2, 3, 3), [2, 3, 4, 4], form="parametrizations", prefix="up",
             stride=(1, 2, 2), padding=(0, 1, 1)),
        case("f16_1d", "g, v and bias stored as F16", 1, 4, 4, 4, [4, 10],
             store=torch.float16, stride=2, padding=1),
        case("f64_2d", "g, v and bias stored as F64", 2, 2, 2, (3, 2), [2, 4, 5],
             store=torch.float64, stride=(2, 1)),
    ]
    with open(os.path.join(HERE, "cases.tsv"), "w") as f:
        f.write("# NAME\tLAYER_PREFIX\tDESCRIPTION (make_weight_norm.py; '-' = none)\n")
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
