#!/usr/bin/python3
"""Generate the golden test vectors for convtranspose from PyTorch.

Run from anywhere with the system interpreter (torch + numpy):

    /usr/bin/python3 tests/golden/make_golden.py

For each case NAME it writes, next to this script:
  NAME.safetensors  the layer (weight [+ bias], hyper-parameters in __metadata__)
  NAME.in.npy       the input, [C, L...] or [N, C, L...]
  NAME.out.npy      torch's float32 CPU output (batched iff the input is)
and cases.tsv (NAME, layer prefix, extra CLI options, description).
Output is deterministic: running it twice gives identical bytes.
"""

import json
import os
import sys
import zlib

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
from ctexport.safetensors_io import save_file  # noqa: E402

torch.set_num_threads(1)

KEYS = ("stride", "padding", "output_padding", "dilation", "groups")
DEFAULTS = {"stride": 1, "padding": 0, "output_padding": 0, "dilation": 1,
            "groups": 1}
STORE_DTYPES = {"F32": torch.float32, "F16": torch.float16,
                "BF16": torch.bfloat16, "F64": torch.float64}


def tup(v, dim):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * dim


def fmt(v, form):
    """Format one hyper-parameter value as a metadata string.

    form: "int" -> "2" when every axis agrees, else a compact JSON list;
          "list" -> always a compact JSON list; "spaced" -> JSON list with
          spaces ("[1, 2, 2]").
    """
    if isinstance(v, int):
        return str(v)
    if form == "int" and len(set(v)) == 1:
        return str(v[0])
    if form == "spaced":
        return json.dumps(list(v))
    return json.dumps(list(v), separators=(",", ":"))


class Case:
    def __init__(self, name, desc, cin, cout, k, in_shape, *, dim, s=1, p=0,
                 op=0, d=1, g=1, bias=True, form="int", omit_defaults=False,
                 meta=None, cli="-", prefix=None, wdtype="F32",
                 in_dtype=np.float32, extra=None):
        self.__dict__.update(locals())
        del self.__dict__["self"]
        self.k = tup(k, dim)
        self.hp = {"stride": tup(s, dim), "padding": tup(p, dim),
                   "output_padding": tup(op, dim), "dilation": tup(d, dim),
                   "groups": g}
        self.extra = extra or {}

    def metadata(self):
        """Metadata written to the file (self.meta overrides the default)."""
        if self.meta is not None:
            md = dict(self.meta)
        else:
            md = {}
            for key in KEYS:
                v = self.hp[key]
                if key == "groups":
                    if self.omit_defaults and v == 1:
                        continue
                    md[key] = str(v)
                    continue
                if self.omit_defaults and all(x == DEFAULTS[key] for x in v):
                    continue
                md[key] = fmt(v, self.form)
        if self.prefix:
            md = {f"{self.prefix}.{k}": v for k, v in md.items()}
        md.update(self.extra.get("meta", {}))
        return md


def L(*a, **kw):
    return Case(*a, dim=1, **kw)


def P(*a, **kw):
    return Case(*a, dim=2, **kw)


def V(*a, **kw):
    return Case(*a, dim=3, **kw)


def case_list():
    # name, description, Cin, Cout, kernel, input shape, hyper-parameters...
    c = [
        # ---- 1d ----
        L("basic_1d", "1d k3 s1 p0, no __metadata__ at all (all defaults)",
          3, 5, 3, [3, 20], meta={}),
        L("stride2_1d", "1d k4 s2 p1, every key explicit incl. defaults",
          4, 6, 4, [2, 4, 17], s=2, p=1),
        L("stride3_op2_1d", "1d k5 s3 p1 op2 (op>p: bias-only tail), 1-element lists",
          2, 3, 5, [2, 12], s=3, p=1, op=2, form="list"),
        L("stride4_crop_1d", "1d k7 s4 p5 heavy crop, latency D=7 > p",
          3, 2, 7, [2, 3, 10], s=4, p=5, omit_defaults=True),
        L("crop_to_one_1d", "1d k7 s4 p5, L=2 -> L_out=1",
          2, 3, 7, [2, 2], s=4, p=5, omit_defaults=True),
        L("k1_s3_op1_1d", "1d k1 s3 p2 op1 (zero insertion, D=5 > p)",
          3, 4, 1, [3, 9], s=3, p=2, op=1),
        L("k1_pointwise_1d", "1d k1 s1 pointwise, no bias",
          5, 3, 1, [5, 11], bias=False, omit_defaults=True),
        L("dilation2_1d", "1d k3 d2 p2",
          3, 4, 3, [3, 15], p=2, d=2, omit_defaults=True),
        L("dilation3_s2_1d", "1d k4 d3 s2 p3 op2 (op >= s allowed since d=3)",
          2, 2, 4, [2, 10], s=2, p=3, op=2, d=3),
        L("groups2_1d", "1d groups=2 k3 s2 p1 op1",
          6, 4, 3, [2, 6, 9], s=2, p=1, op=1, g=2),
        L("depthwise_1d", "1d depthwise groups=Cin=Cout=4 k5 s2 p2 op1",
          4, 4, 5, [4, 13], s=2, p=2, op=1, g=4),
        L("depthwise_mult_1d", "1d groups=Cin=3, Cout=6, no bias",
          3, 6, 3, [2, 3, 8], p=1, g=3, bias=False, omit_defaults=True),
        L("audio_up_1d", "1d stereo upsampler k64 s2 p31 groups2 (L_out=2L)",
          2, 2, 64, [2, 48], s=2, p=31, g=2, omit_defaults=True),
        L("hifigan_up_1d", "1d k16 s8 p4 (x8 upsampling), batched",
          8, 4, 16, [2, 8, 6], s=8, p=4, omit_defaults=True),
        L("len1_1d", "1d L=1 input, k3 s2 p0",
          3, 2, 3, [3, 1], s=2, omit_defaults=True),
        L("len1_crop_1d", "1d L=1 input, k3 s2 p1 -> L_out=1, batched",
          2, 2, 3, [1, 2, 1], s=2, p=1, omit_defaults=True),
        L("doc_1d", "PyTorch doc: ConvTranspose1d(16,33,3,stride=2,padding=1)",
          16, 33, 3, [2, 16, 50], s=2, p=1, omit_defaults=True),
        L("prefix_1d", "layer ups.0 of a checkpoint (ups.1.*, bn.* int64, format=pt ignored)",
          4, 2, 4, [4, 10], s=2, p=1, omit_defaults=True, prefix="ups.0",
          extra={"tensors": {
                     "ups.1.weight": ("randn", [2, 1, 3]),
                     "ups.1.bias": ("randn", [1]),
                     "bn.running_mean": ("randn", [4]),
                     "bn.num_batches_tracked": ("int64", 123456789)},
                 "meta": {"format": "pt", "ups.1.stride": "3",
                          "ups.1.padding": "[5]"}}),
        L("f16_weights_1d", "1d weight+bias stored F16, k5 s2 p2 op1",
          3, 3, 5, [3, 12], s=2, p=2, op=1, wdtype="F16"),
        L("f64_input_1d", "1d float64 input, k4 s2 p1",
          2, 3, 4, [2, 2, 10], s=2, p=1, in_dtype=np.float64,
          omit_defaults=True),
        L("override_1d", "1d file has no metadata; CLI gives s2 p1 op1",
          2, 2, 3, [2, 9], s=2, p=1, op=1, meta={},
          cli="--stride 2 --padding 1 --output-padding 1"),
        # ---- 2d ----
        P("basic_2d", "2d k3 s1 p1 RGB-like 3->3",
          3, 3, 3, [3, 8, 10], p=1, omit_defaults=True),
        P("stride2_2d", "2d k4 s2 p1, uniform values as lists [2,2]",
          2, 3, 4, [2, 2, 6, 5], s=2, p=1, form="list"),
        P("axes_2d", "2d per-axis k(3,4) s(1,2) p(1,0) op(0,1) d(2,1)",
          3, 2, (3, 4), [3, 5, 7], s=(1, 2), p=(1, 0), op=(0, 1), d=(2, 1)),
        P("groups2_2d", "2d groups=2 k3 s2 p(0,1) op1",
          4, 6, 3, [2, 4, 4, 5], s=2, p=(0, 1), op=1, g=2),
        P("depthwise_2d", "2d depthwise groups=3 k3 s2 p1 op1 (RGB x2)",
          3, 3, 3, [3, 6, 6], s=2, p=1, op=1, g=3),
        P("k1_2d", "2d k1 s(2,3) op(1,2)",
          2, 3, 1, [2, 4, 3], s=(2, 3), op=(1, 2), omit_defaults=True),
        P("crop_2d", "2d k5 s3 p2, H=1 W=2 -> 1x4",
          2, 2, 5, [2, 1, 2], s=3, p=2, omit_defaults=True),
        P("stride4_2d", "2d k(4,8) s4 p(0,2), no bias",
          2, 2, (4, 8), [2, 3, 3], s=4, p=(0, 2), bias=False,
          omit_defaults=True),
        P("dilation3_2d", "2d k3 d3 s(1,2) p(3,1) op(2,1)",
          2, 2, 3, [2, 5, 5], s=(1, 2), p=(3, 1), op=(2, 1), d=3),
        P("doc_2d", "PyTorch doc: ConvTranspose2d(16,33,3,stride=2,padding=1,output_padding=1)",
          16, 33, 3, [1, 16, 7, 9], s=2, p=1, op=1, omit_defaults=True),
        P("bf16_weights_2d", "2d weight+bias stored BF16, k3 s2 p1 op1",
          3, 4, 3, [3, 5, 6], s=2, p=1, op=1, wdtype="BF16"),
        P("f64_input_2d", "2d float64 input, k3 s2 p1 op1",
          3, 3, 3, [3, 4, 5], s=2, p=1, op=1, in_dtype=np.float64),
        P("prefix_2d", "layer decoder.up beside a bare 'weight' of another layer",
          2, 3, (3, 2), [2, 2, 4, 3], s=(2, 1), p=(1, 0), op=(1, 0),
          form="list", omit_defaults=True, prefix="decoder.up",
          extra={"tensors": {"weight": ("randn", [5, 5, 1, 1]),
                             "decoder.out.weight": ("randn", [3, 1, 1, 1])},
                 "meta": {"stride": "7"}}),
        P("override_2d", "2d file says s2 p0; CLI overrides to s(1,2) p(1,0)",
          2, 3, 3, [2, 5, 6], s=(1, 2), p=(1, 0),
          meta={"stride": "2", "padding": "[0,0]", "groups": "1"},
          cli="--stride 1,2 --padding 1,0"),
        # ---- 3d ----
        V("basic_3d", "3d k3 s1 p1",
          2, 3, 3, [2, 4, 5, 6], p=1, omit_defaults=True),
        V("axes_3d", "3d per-axis k(3,3,5) s(1,2,2) p(1,0,2) op(0,1,0) d(1,2,1), spaced JSON lists",
          2, 3, (3, 3, 5), [2, 2, 4, 3, 5], s=(1, 2, 2), p=(1, 0, 2),
          op=(0, 1, 0), d=(1, 2, 1), form="spaced"),
        V("stride_mix_3d", "3d k(4,3,4) s(2,3,4) p(1,0,2) op(1,2,0)",
          3, 2, (4, 3, 4), [3, 4, 3, 3], s=(2, 3, 4), p=(1, 0, 2),
          op=(1, 2, 0), omit_defaults=True),
        V("groups2_3d", "3d groups=2 k2 s2 d2 p1 op1",
          4, 4, 2, [4, 3, 3, 4], s=2, p=1, op=1, d=2, g=2),
        V("depthwise_3d", "3d depthwise groups=3 k3 s(2,1,1) p1 op(1,0,0), no bias",
          3, 3, 3, [3, 4, 4, 4], s=(2, 1, 1), p=1, op=(1, 0, 0), g=3,
          bias=False),
        V("crop_3d", "3d heavy crop k(3,5,3) s(2,3,1) p(1,2,1) -> T_out=1",
          2, 2, (3, 5, 3), [2, 1, 2, 3], s=(2, 3, 1), p=(1, 2, 1),
          omit_defaults=True),
        V("len1_3d", "3d 1x1x1 input, k3 s2 p1 op1, batched",
          2, 2, 3, [2, 2, 1, 1, 1], s=2, p=1, op=1, omit_defaults=True),
        V("doc_3d", "PyTorch doc: ConvTranspose3d(16,33,3,stride=2,padding=1,output_padding=(0,1,1))",
          16, 33, 3, [1, 16, 3, 5, 6], s=2, p=1, op=(0, 1, 1),
          omit_defaults=True),
        V("f64_weights_3d", "3d weight+bias stored F64, k3 s2 p1",
          2, 3, 3, [2, 3, 3, 3], s=2, p=1, wdtype="F64"),
        V("override_3d", "3d file: no groups/dilation (g=1,Cout=2); CLI --groups 2 --dilation 2 ...",
          4, 4, (2, 3, 3), [4, 3, 3, 3], s=(2, 1, 1), p=1, d=2, g=2,
          bias=False, meta={"padding": "0"},
          cli="--groups 2 --dilation 2 --stride 2,1,1 --padding 1"),
    ]
    return c


def build(case):
    gen = torch.Generator().manual_seed(zlib.crc32(case.name.encode()))
    dim, g = case.dim, case.hp["groups"]
    wshape = [case.cin, case.cout // g, *case.k]
    sdt = STORE_DTYPES[case.wdtype]
    gdt = torch.float64 if case.wdtype == "F64" else torch.float32
    w_store = torch.randn(wshape, generator=gen, dtype=gdt).to(sdt)
    b_store = (torch.randn([case.cout], generator=gen, dtype=gdt).to(sdt)
               if case.bias else None)
    x = torch.randn(case.in_shape, generator=gen, dtype=torch.float64)
    x = x.numpy().astype(case.in_dtype)

    cls = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d,
           3: torch.nn.ConvTranspose3d}[dim]
    layer = cls(case.cin, case.cout, case.k, stride=case.hp["stride"],
                padding=case.hp["padding"],
                output_padding=case.hp["output_padding"], groups=g,
                bias=case.bias, dilation=case.hp["dilation"])
    with torch.no_grad():
        layer.weight.copy_(w_store.float())
        if case.bias:
            layer.bias.copy_(b_store.float())
        xt = torch.from_numpy(x.astype(np.float32))
        batched = xt.dim() == dim + 2
        y = layer(xt if batched else xt.unsqueeze(0))
        y = y if batched else y.squeeze(0)
    y = np.ascontiguousarray(y.numpy(), dtype=np.float32)

    pre = case.prefix + "." if case.prefix else ""
    tensors = {pre + "weight": w_store}
    if case.bias:
        tensors[pre + "bias"] = b_store
    for name, (kind, arg) in case.extra.get("tensors", {}).items():
        if kind == "int64":
            tensors[name] = np.array(arg, dtype=np.int64)
        else:
            tensors[name] = torch.randn(arg, generator=gen)
    md = case.metadata()
    return tensors, (md if md else None), x, y


def main():
    rows = ["# NAME\tLAYER_PREFIX\tEXTRA_CLI_ARGS\tDESCRIPTION"
            "  (generated by make_golden.py; '-' = none)"]
    names = set()
    for case in case_list():
        assert case.name not in names, case.name
        names.add(case.name)
        tensors, md, x, y = build(case)
        base = os.path.join(HERE, case.name)
        save_file(tensors, base + ".safetensors", md)
        np.save(base + ".in.npy", x)
        np.save(base + ".out.npy", y)
        rows.append("\t".join([case.name, case.prefix or "-", case.cli,
                               case.desc]))
        print(f"{case.name:18s} in {list(x.shape)} {x.dtype} -> "
              f"out {list(y.shape)}")
    with open(os.path.join(HERE, "cases.tsv"), "w") as f:
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
