#!/usr/bin/python3
"""Round trip of the export tool: PyTorch layer -> model file -> convtranspose.

    /usr/bin/python3 tests/export/test_export.py BUILD/tools/convtranspose

Builds random ConvTranspose1d/2d/3d layers (strides, padding, output_padding,
dilation, groups, with and without bias, plain or weight-normed in the old
weight_g/weight_v form or the parametrizations form), exports each one from
a module (Python API), a state_dict file or a whole pickled model (the
convtranspose-export command), runs `convtranspose apply` on a random .npy
input and compares with the module's own output:
max|out - ref| <= 1e-4 * max(1, max|ref|).  Then checks that bad requests
fail with a message and leave no file.  Prints TAP.
"""

import json
import os
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import torch
from torch.nn.utils import parametrize

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EXPORT = os.path.join(ROOT, "tools", "convtranspose-export")
sys.path.insert(0, os.path.join(ROOT, "tools"))
from ctexport.export import export_layer  # noqa: E402
from ctexport.safetensors_io import load_file  # noqa: E402

torch.set_num_threads(1)

CONV = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d,
        3: torch.nn.ConvTranspose3d}


class WeightNorm(torch.nn.Module):
    """torch.nn.utils.parametrizations.weight_norm's parametrization (torch
    >= 2.1 has it built in; Debian's torch 1.13 does not): original0 = g,
    original1 = v, weight = g * v / ||v|| over every axis but `dim`."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, g, v):
        return torch._weight_norm(v, g, self.dim)

    def right_inverse(self, weight):
        return torch.norm_except_dim(weight, 2, self.dim), weight


def new_weight_norm(module, dim=0):
    """Weight-norm `module` in the parametrizations form."""
    if hasattr(torch.nn.utils.parametrizations, "weight_norm"):
        return torch.nn.utils.parametrizations.weight_norm(module, dim=dim)
    parametrize.register_parametrization(module, "weight", WeightNorm(dim))
    return module


class Case:
    """One layer: dim, channels, kernel, hyper-parameters and how it is made
    (wn: None, "old" or "new"; src: "module", "state_dict" or "model")."""

    def __init__(self, dim, cin, cout, k, shape, s=1, p=0, op=0, d=1, g=1,
                 bias=True, wn=None, wn_dim=0, src="module"):
        self.__dict__.update(locals())
        del self.__dict__["self"]

    def name(self):
        return (f"{self.dim}d {self.cin}->{self.cout} k{self.k} s{self.s} "
                f"p{self.p} op{self.op} d{self.d} g{self.g}"
                f"{'' if self.bias else ' nobias'}"
                f"{' wn-' + self.wn + str(self.wn_dim) if self.wn else ''}"
                f" from {self.src}, input {self.shape}")


CASES = [
    # 1d
    Case(1, 3, 5, 3, [3, 20]),
    Case(1, 2, 2, 64, [2, 100], s=2, p=31, g=2, src="state_dict"),
    Case(1, 4, 6, 4, [2, 4, 17], s=2, p=1, src="model"),
    Case(1, 2, 3, 5, [2, 12], s=3, p=1, op=2, bias=False, src="state_dict"),
    Case(1, 2, 2, 4, [2, 10], s=2, p=3, op=2, d=3, wn="old"),
    Case(1, 6, 4, 3, [6, 9], s=2, p=1, op=1, g=2, wn="old", src="state_dict"),
    Case(1, 4, 4, 5, [4, 13], s=2, p=2, op=1, g=4, wn="new",
         src="state_dict"),
    Case(1, 8, 4, 16, [2, 8, 6], s=8, p=4, wn="old", src="model"),
    Case(1, 3, 6, 3, [3, 8], p=1, g=3, bias=False, wn="new"),
    Case(1, 4, 6, 3, [4, 11], s=2, wn="old", wn_dim=1, src="state_dict"),
    # 2d
    Case(2, 3, 3, 3, [3, 8, 10], p=1),
    Case(2, 3, 3, 8, [3, 9, 12], s=2, p=3, src="state_dict"),
    Case(2, 3, 2, (3, 4), [3, 5, 7], s=(1, 2), p=(1, 0), op=(0, 1),
         d=(2, 1), src="model"),
    Case(2, 4, 6, 3, [2, 4, 4, 5], s=2, p=(0, 1), op=1, g=2, bias=False,
         wn="old", src="state_dict"),
    Case(2, 3, 3, 3, [3, 6, 6], s=2, p=1, op=1, g=3, wn="new",
         src="state_dict"),
    Case(2, 2, 3, (2, 5), [2, 4, 4], s=(2, 3), p=(0, 2), op=(1, 2), d=(1, 2),
         wn="new"),
    Case(2, 2, 2, 3, [2, 5, 5], s=(1, 2), p=(3, 1), op=(2, 1), d=3,
         wn="old", src="model"),
    # 3d
    Case(3, 2, 3, 3, [2, 4, 5, 6], p=1, src="state_dict"),
    Case(3, 3, 3, (3, 8, 8), [3, 4, 6, 5], s=(1, 2, 2), p=(1, 3, 3),
         src="model"),
    Case(3, 3, 3, (3, 5, 5), [3, 4, 5, 6], s=(2, 1, 1), p=(1, 2, 2),
         op=(1, 0, 0), wn="old"),
    Case(3, 4, 4, 2, [4, 3, 3, 4], s=2, p=1, op=1, d=2, g=2, bias=False,
         src="state_dict"),
    Case(3, 2, 3, (3, 3, 5), [2, 2, 4, 3, 5], s=(1, 2, 2), p=(1, 0, 2),
         op=(0, 1, 0), d=(1, 2, 1), wn="new", src="state_dict"),
    Case(3, 3, 3, 3, [3, 3, 3, 4], s=(2, 1, 1), p=1, op=(1, 0, 0), g=3,
         wn="old", src="state_dict"),
]


def cli_value(v):
    """A hyper-parameter in the CLI's syntax: "2" or "1,2,2"."""
    return str(v) if isinstance(v, int) else ",".join(map(str, v))


def make_layer(case, gen):
    """The case's module (weight-normed as asked) with random parameters."""
    layer = CONV[case.dim](case.cin, case.cout, case.k, stride=case.s,
                           padding=case.p, output_padding=case.op,
                           dilation=case.d, groups=case.g, bias=case.bias)
    with torch.no_grad():
        for param in layer.parameters():
            param.copy_(torch.randn(param.shape, generator=gen))
    if case.wn == "old":
        torch.nn.utils.weight_norm(layer, dim=case.wn_dim)
        g = layer.weight_g
    elif case.wn == "new":
        new_weight_norm(layer, dim=case.wn_dim)
        g = layer.parametrizations.weight.original0
    if case.wn:
        # A g unlike ||v|| (as after training): the stale `weight` attribute
        # of the old form no longer matches what forward() computes.
        with torch.no_grad():
            g.mul_(torch.rand(g.shape, generator=gen) + 0.5)
    return layer


def export(case, layer, tmp, model):
    """Export `layer` to `model` the case's way; returns None or an error."""
    if case.src == "module":
        export_layer(layer, model)
        return None
    # Inside a checkpoint with another layer beside it, as a network would.
    net = torch.nn.ModuleDict({"decoder": torch.nn.ModuleDict({
        "pre": CONV[case.dim](case.cin, case.cin, 1), "up": layer})})
    ckpt = os.path.join(tmp, "ckpt.pt")
    args = [EXPORT, ckpt, model, "--layer", "decoder.up"]
    if case.src == "state_dict":
        torch.save(net.state_dict(), ckpt)
        args += ["--stride", cli_value(case.s), "--padding", cli_value(case.p),
                 "--output-padding", cli_value(case.op),
                 "--dilation", cli_value(case.d), "--groups", str(case.g)]
    else:
        torch.save(net, ckpt)
    run = subprocess.run(args, capture_output=True, text=True)
    return None if run.returncode == 0 else run.stderr.strip()


def check_case(cli, case, tmp):
    """Export, apply and compare; returns None or what went wrong."""
    gen = torch.Generator().manual_seed(zlib.crc32(case.name().encode()))
    layer = make_layer(case, gen)
    x = torch.randn(case.shape, generator=gen)
    batched = x.dim() == case.dim + 2
    with torch.no_grad():
        ref = layer(x if batched else x.unsqueeze(0))
    ref = (ref if batched else ref.squeeze(0)).numpy()

    model = os.path.join(tmp, "model.safetensors")
    err = export(case, layer, tmp, model)
    if err:
        return f"export failed: {err}"
    _, meta = load_file(model)
    if json.loads(meta["stride"]) != list(layer.stride) \
            or int(meta["groups"]) != case.g:
        return f"metadata {meta}"
    inp, out = os.path.join(tmp, "in.npy"), os.path.join(tmp, "out.npy")
    np.save(inp, x.numpy())
    run = subprocess.run([cli, "apply", model, inp, out], capture_output=True,
                         text=True)
    if run.returncode != 0:
        return f"convtranspose apply failed: {run.stderr.strip()}"
    y = np.load(out)
    if y.shape != ref.shape:
        return f"shape {y.shape} != {ref.shape}"
    diff = float(np.abs(y - ref).max())
    tol = 1e-4 * max(1.0, float(np.abs(ref).max()))
    return None if diff <= tol else f"max|diff| {diff:.3g} > {tol:.3g}"


def refusals(tmp):
    """Requests the tool must refuse: (description, args)."""
    net = torch.nn.Sequential(torch.nn.ConvTranspose1d(2, 2, 4),
                              torch.nn.ConvTranspose1d(2, 2, 4))
    sd, whole = os.path.join(tmp, "sd.pt"), os.path.join(tmp, "whole.pt")
    torch.save(net.state_dict(), sd)
    torch.save(net, whole)
    out = os.path.join(tmp, "refused.safetensors")
    return out, [
        ("unknown layer", [sd, out, "--layer", "9"]),
        ("two layers and no --layer", [sd, out]),
        ("output_padding >= stride", [sd, out, "--layer", "0",
                                      "--output-padding", "1"]),
        ("groups not dividing channels", [sd, out, "--layer", "0",
                                          "--groups", "3"]),
        ("2 values for a 1d layer", [sd, out, "--layer", "0",
                                     "--stride", "2,2"]),
        ("hyper-parameters with a whole model", [whole, out, "--layer", "1",
                                                 "--stride", "2"]),
        ("not a checkpoint", [os.path.join(ROOT, "README.md"), out]),
    ]


def main():
    cli = sys.argv[1]
    n = 0
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            n += 1
            err = check_case(cli, case, tmp)
            failed += err is not None
            print(f"{'not ok' if err else 'ok'} {n} - {case.name()}")
            if err:
                print(f"# {err}")
        out, bad = refusals(tmp)
        for what, args in bad:
            n += 1
            run = subprocess.run([EXPORT, *args], capture_output=True,
                                 text=True)
            msg = run.stderr.strip()
            good = (run.returncode != 0 and msg.count("\n") == 0
                    and msg.startswith("convtranspose-export: ")
                    and not os.path.exists(out))
            failed += not good
            print(f"{'ok' if good else 'not ok'} {n} - refuses {what}")
            print(f"# {msg}")
    print(f"1..{n}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
