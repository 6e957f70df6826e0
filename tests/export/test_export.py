#!/usr/bin/python3
"""Round trip of the export tool: PyTorch layer -> model file -> convtranspose.

    /usr/bin/python3 tests/export/test_export.py BUILD/tools/convtranspose

Builds random ConvTranspose1d/2d/3d layers (strides, padding, output_padding,
dilation, groups, with and without bias, plain or weight-normed in the old
weight_g/weight_v form or the parametrizations form), exports each one from
a module (Python API), a state_dict file or a whole pickled model (the
convtranspose-export command), runs `convtranspose apply` on a random .npy
input and compares with the module's own output:
max|out - ref| <= 1e-4 * max(1, max|ref|).  Then the same round trip for the
up layers of a HiFi-GAN-shaped generator (tests/export/hifigan.py) saved in
every form: state_dict, {"generator": state_dict}, DataParallel-prefixed,
pickled, scripted and traced TorchScript; and for layers whose kind only the
state_dict's structure tells.  Then checks that bad requests (regular
convolutions among them: a state_dict's weight looks alike) fail with a
one-line message saying why and leave no file.  Prints TAP.
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
sys.path.insert(0, HERE)
# The export tool unpickles hifigan.Generator: it must find the module too.
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    p for p in (HERE, os.environ.get("PYTHONPATH")) if p))
from ctexport.export import ExportError, export_layer  # noqa: E402
from ctexport.safetensors_io import load_file  # noqa: E402

import hifigan  # noqa: E402  (this directory; the tool unpickles it too)

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


def apply_and_compare(cli, model, x, ref, tmp):
    """Run `convtranspose apply` with `model` on `x` (tensor) and compare
    with `ref` (numpy); returns None or what went wrong."""
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
    return apply_and_compare(cli, model, x, ref, tmp)


def randomize(module, gen):
    """Random parameters, and weight-norm g unlike ||v|| (as after
    training), so that a stale or unfolded weight would show."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.endswith("weight_g"):
                param.mul_(torch.rand(param.shape, generator=gen) + 0.5)
            else:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.3)
    return module


def hifigan_checkpoints(tmp):
    """A HiFi-GAN-shaped generator saved in every form a user may have.

    Returns (generator, its weight-norm-free copy (what the scripted file
    holds), {form: path})."""
    gen = torch.Generator().manual_seed(1)
    model = randomize(hifigan.Generator(), gen)
    plain = hifigan.Generator()
    plain.load_state_dict(model.state_dict())
    plain.remove_weight_norm()
    mel = torch.randn(1, hifigan.MELS, 12, generator=gen)
    sd = model.state_dict()
    paths = {form: os.path.join(tmp, f"hifigan-{form}.pt")
             for form in ("sd", "generator", "dataparallel", "pickled",
                          "scripted", "traced", "discriminators")}
    torch.save(sd, paths["sd"])
    torch.save({"generator": sd}, paths["generator"])  # HiFi-GAN's g_*
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()},
                "epoch": 3}, paths["dataparallel"])
    torch.save(model, paths["pickled"])
    torch.jit.save(torch.jit.script(plain), paths["scripted"])
    with torch.no_grad():  # the weight-norm hooks are traced along
        torch.jit.save(torch.jit.trace(model, mel), paths["traced"])
    # HiFi-GAN's do_* files: discriminators and optimizer states only.
    disc = torch.nn.Sequential(torch.nn.Conv1d(1, 4, 5),
                               torch.nn.Conv1d(4, 1, 3))
    torch.save({"mpd": disc.state_dict(), "msd": disc.state_dict(),
                "optim_d": torch.optim.Adam(disc.parameters()).state_dict()},
               paths["discriminators"])
    return model, plain, paths


def layer_io(module, gen):
    """A random input for the 1d or 2d `module` and its output."""
    dims = len(module.kernel_size)
    x = torch.randn(module.in_channels, *(9, 5, 4)[dims - 1:dims - 1 + dims],
                    generator=gen)
    with torch.no_grad():
        return x, module(x.unsqueeze(0)).squeeze(0).numpy()


def up_options(module):
    """--stride / --padding of a state_dict's 1d up layer."""
    return ["--stride", str(module.stride[0]),
            "--padding", str(module.padding[0])]


def structure_checkpoints(tmp):
    """State_dicts whose layers' kind only their structure tells:
    (what, export args after the checkpoint, module, its input)."""
    gen = torch.Generator().manual_seed(2)
    cases = []
    # A square ConvTranspose1d with a bias, no telling name: ambiguous,
    # exported only when the user says it is one.
    square = randomize(torch.nn.Sequential(
        torch.nn.ConvTranspose1d(4, 4, 3, stride=2)), gen)
    path = os.path.join(tmp, "square.pt")
    torch.save(square.state_dict(), path)
    cases.append(("ambiguous layer with --assume-transposed",
                  [path, "--layer", "0", "--stride", "2",
                   "--assume-transposed"], square[0]))
    # DCGAN's generator: bias-free ConvTransposes between BatchNorms, plain
    # indices for names: the channel chain tells them.
    dcgan = randomize(torch.nn.Sequential(
        torch.nn.ConvTranspose2d(6, 4, 4, 2, 1, bias=False),
        torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.ConvTranspose2d(4, 3, 4, 2, 1, bias=False)), gen)
    path = os.path.join(tmp, "dcgan.pt")
    torch.save(dcgan.state_dict(), path)
    for i in (0, 3):
        cases.append((f"DCGAN-like layer {i} told by the channel chain",
                      [path, "--layer", str(i), "--stride", "2",
                       "--padding", "1"], dcgan[i]))
    # Traced with weight norm in the parametrizations form, which renames
    # the class (ParametrizedConvTranspose1d).
    net = randomize(torch.nn.Sequential(
        torch.nn.Conv1d(3, 4, 3), torch.nn.ConvTranspose1d(4, 2, 4, 2, 1)),
        gen)
    new_weight_norm(net[1])
    with torch.no_grad():
        net[1].parametrizations.weight.original0.mul_(1.5)
        path = os.path.join(tmp, "parametrized-traced.pt")
        torch.jit.save(torch.jit.trace(net, torch.randn(1, 3, 8)), path)
    cases.append(("traced TorchScript, parametrized weight norm",
                  [path, "--layer", "1"], net[1]))
    # A single non-square ConvTranspose1d: its bias tells, no --layer needed.
    single = randomize(torch.nn.ConvTranspose1d(4, 6, 3, stride=3), gen)
    path = os.path.join(tmp, "single.pt")
    torch.save(single.state_dict(), path)
    cases.append(("single ConvTranspose1d without --layer",
                  [path, "--stride", "3"], single))
    return cases


def structure_exports(cli, tmp, hifi):
    """Round trips of the HiFi-GAN checkpoints (hifigan_checkpoints()) and
    of structure_checkpoints(): [(what, None or what went wrong)]."""
    gen = torch.Generator().manual_seed(3)
    model, plain, paths = hifi
    up0, up1 = model.ups
    cases = [
        ("HiFi-GAN state_dict, ups.0",
         [paths["sd"], "--layer", "ups.0", *up_options(up0)], up0),
        ("HiFi-GAN {'generator': state_dict}, ups.1",
         [paths["generator"], "--layer", "ups.1", *up_options(up1)], up1),
        ("HiFi-GAN state_dict under 'state_dict', module. prefixes, ups.1",
         [paths["dataparallel"], "--layer", "ups.1", *up_options(up1)], up1),
        ("HiFi-GAN pickled model, ups.0",
         [paths["pickled"], "--layer", "ups.0"], up0),
        ("HiFi-GAN scripted TorchScript, ups.0",
         [paths["scripted"], "--layer", "ups.0"], plain.ups[0]),
        ("HiFi-GAN traced TorchScript (weight norm), ups.1",
         [paths["traced"], "--layer", "ups.1"], up1),
    ]
    cases += structure_checkpoints(tmp)
    out = os.path.join(tmp, "model.safetensors")
    results = []
    for what, args, module in cases:
        if os.path.exists(out):
            os.remove(out)
        run = subprocess.run([EXPORT, args[0], out, *args[1:]],
                             capture_output=True, text=True, env=ENV)
        if run.returncode != 0:
            results.append((what, f"export failed: {run.stderr.strip()}"))
            continue
        x, ref = layer_io(module, gen)
        results.append((what, apply_and_compare(cli, out, x, ref, tmp)))
    return results


def broken_torchscript(path, tmp):
    """A copy of the TorchScript file `path` whose code does not compile."""
    import zipfile
    broken = os.path.join(tmp, "broken-script.pt")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith(".py"):
                data = b"def forward(self x):\n"
            dst.writestr(info, data)
    return broken


def refusals(tmp, hifi_paths):
    """Requests the tool must refuse: (description, args, a fragment its
    message must hold)."""
    # Named as up layers: a state_dict of plain indices could not tell.
    up = torch.nn.ConvTranspose1d
    net = torch.nn.ModuleDict({"ups": torch.nn.ModuleList([up(2, 2, 4),
                                                           up(2, 2, 4)])})
    sd, whole = os.path.join(tmp, "sd.pt"), os.path.join(tmp, "whole.pt")
    torch.save(net.state_dict(), sd)
    torch.save(net, whole)
    # Regular convolutions whose state_dicts look like ConvTransposes'.
    conv = os.path.join(tmp, "conv1d.pt")
    torch.save(torch.nn.Conv1d(4, 8, 3).state_dict(), conv)
    bare = os.path.join(tmp, "conv1d-nobias.pt")
    torch.save(torch.nn.Conv1d(4, 8, 3, bias=False).state_dict(), bare)
    square = os.path.join(tmp, "square-conv1d.pt")
    torch.save(torch.nn.Sequential(torch.nn.Conv1d(4, 4, 3)).state_dict(),
               square)
    conv_bn = os.path.join(tmp, "conv-bn.pt")
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, bias=False),
                                   torch.nn.BatchNorm2d(4)).state_dict(),
               conv_bn)
    truncated = os.path.join(tmp, "truncated.pt")
    with open(hifi_paths["sd"], "rb") as f:
        data = f.read()
    with open(truncated, "wb") as f:
        f.write(data[:len(data) // 2])
    h = hifi_paths
    regular = "is a Conv1d (regular convolution), not a ConvTranspose1d"
    return [
        ("unknown layer", [sd, "--layer", "ups.9"], "no layer 'ups.9'"),
        ("two layers and no --layer", [sd],
         "2 ConvTranspose layers (ups.0, ups.1): choose one with --layer"),
        ("output_padding >= stride", [sd, "--layer", "ups.0",
                                      "--output-padding", "1"],
         "output_padding must be smaller"),
        ("groups not dividing channels", [sd, "--layer", "ups.0",
                                          "--groups", "3"],
         "groups=3 does not divide"),
        ("2 values for a 1d layer", [sd, "--layer", "ups.0",
                                     "--stride", "2,2"],
         "stride: need 1 integer"),
        ("hyper-parameters with a whole model", [whole, "--layer", "ups.1",
                                                 "--stride", "2"],
         "a whole model knows its own hyper-parameters"),
        ("not a checkpoint", [os.path.join(ROOT, "README.md")],
         "invalid load key"),
        ("a truncated checkpoint", [truncated],
         "not a checkpoint that torch.load can read"),
        # HiFi-GAN's regular convolutions, in every form.
        ("HiFi-GAN state_dict's resblocks.0.convs1.0",
         [h["sd"], "--layer", "resblocks.0.convs1.0"],
         f"layer 'resblocks.0.convs1.0' {regular}: by its name 'convs1'"),
        ("HiFi-GAN state_dict's conv_pre",
         [h["sd"], "--layer", "conv_pre"], f"layer 'conv_pre' {regular}"),
        ("HiFi-GAN state_dict's conv_post",
         [h["sd"], "--layer", "conv_post"], f"layer 'conv_post' {regular}"),
        ("--assume-transposed against a layer's shapes",
         [h["sd"], "--layer", "conv_pre", "--assume-transposed"],
         f"layer 'conv_pre' {regular}: its bias [32] is weight.shape[0]"),
        ("HiFi-GAN {'generator': ...}'s resblocks.1.convs2.2",
         [h["generator"], "--layer", "resblocks.1.convs2.2"],
         f"the state_dict under 'generator': layer 'resblocks.1.convs2.2' "
         f"{regular}"),
        ("HiFi-GAN DataParallel state_dict's conv_pre",
         [h["dataparallel"], "--layer", "conv_pre"],
         "under 'state_dict' with keys prefixed 'module.': layer 'conv_pre' "
         + regular),
        ("HiFi-GAN pickled model's conv_pre",
         [h["pickled"], "--layer", "conv_pre"],
         f"layer 'conv_pre' {regular}"),
        ("HiFi-GAN pickled model's resblocks.0",
         [h["pickled"], "--layer", "resblocks.0"],
         "layer 'resblocks.0' is a ResBlock1, not a ConvTranspose1d"),
        ("HiFi-GAN scripted model's resblocks.0.convs1.0",
         [h["scripted"], "--layer", "resblocks.0.convs1.0"],
         f"layer 'resblocks.0.convs1.0' {regular}"),
        ("HiFi-GAN traced model's conv_pre",
         [h["traced"], "--layer", "conv_pre"], f"layer 'conv_pre' {regular}"),
        ("HiFi-GAN state_dict without --layer", [h["sd"]],
         "the state_dict has 2 ConvTranspose layers (ups.0, ups.1)"),
        ("hyper-parameters with a TorchScript model",
         [h["traced"], "--layer", "ups.0", "--stride", "4"],
         "a TorchScript model knows its own hyper-parameters"),
        ("a TorchScript file that does not load",
         [broken_torchscript(h["scripted"], tmp), "--layer", "ups.0"],
         "a TorchScript file that torch.jit.load cannot read"),
        ("HiFi-GAN discriminators' checkpoint", [h["discriminators"]],
         "holds several models or state_dicts (mpd, msd)"),
        ("HiFi-GAN discriminator's Conv1d",
         [h["discriminators"], "--layer", "mpd.0"],
         f"the state_dict under 'mpd': layer '0' {regular}"),
        # What a state_dict's structure tells.
        ("a single Conv1d state_dict without --layer", [conv],
         f"holds one convolution only; the top-level layer {regular}"),
        ("a single bias-free Conv1d state_dict without --layer", [bare],
         "cannot tell whether the top-level layer is a ConvTranspose1d"),
        ("a layer of unknown kind",
         [square, "--layer", "0"],
         "cannot tell whether layer '0' is a ConvTranspose1d or a Conv1d"),
        ("a single layer of unknown kind without --layer", [square],
         "if it is a ConvTranspose1d, pass --assume-transposed"),
        ("a Conv2d told by the channel chain", [conv_bn, "--layer", "0"],
         "layer '0' is a Conv2d (regular convolution), not a "
         "ConvTranspose2d: by the channel chain"),
    ]


def api_refusal(tmp):
    """export_layer() with a regular convolution: None or what went wrong."""
    out = os.path.join(tmp, "api.safetensors")
    try:
        export_layer(torch.nn.Conv2d(3, 3, 3), out)
    except ExportError as e:
        want = "the module is a Conv2d (regular convolution), not a " \
            "ConvTranspose2d"
        if str(e) != want:
            return f"message {str(e)!r}, not {want!r}"
        return "an output file was left" if os.path.exists(out) else None
    return "no ExportError"


def main():
    cli = sys.argv[1]
    n = 0
    failed = 0

    def report(what, err):
        nonlocal n, failed
        n += 1
        failed += err is not None
        print(f"{'not ok' if err else 'ok'} {n} - {what}")
        if err:
            print(f"# {err}")

    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            report(case.name(), check_case(cli, case, tmp))
        hifi = hifigan_checkpoints(tmp)
        for what, err in structure_exports(cli, tmp, hifi):
            report(f"exports {what}", err)
        out = os.path.join(tmp, "refused.safetensors")
        for what, args, fragment in refusals(tmp, hifi[2]):
            run = subprocess.run([EXPORT, args[0], out, *args[1:]],
                                 capture_output=True, text=True, env=ENV)
            msg = run.stderr.strip()
            print(f"# {msg}")
            err = None
            if run.returncode == 0:
                err = "exit status 0"
            elif msg.count("\n") != 0 or not msg.startswith(
                    f"convtranspose-export: {args[0]}: "):
                err = "not a one-line message naming the file"
            elif fragment not in msg:
                err = f"the message lacks {fragment!r}"
            elif os.path.exists(out) or os.path.exists(out + ".tmp"):
                err = "an output file was left"
            report(f"refuses {what}", err)
            for leftover in (out, out + ".tmp"):
                if os.path.exists(leftover):
                    os.remove(leftover)
        report("export_layer() refuses a Conv2d", api_refusal(tmp))
    print(f"1..{n}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
