#!/usr/bin/python3
"""Golden networks: small PyTorch modules exported with torch.onnx.export.

Run from anywhere with the system interpreter (Debian's python3-torch 1.13 +
python3-numpy; nothing else):

    /usr/bin/python3 tests/golden/networks/make_networks.py

For each case NAME (the CASES table below) it writes, next to this script:
  NAME.opsetV.onnx  the module exported at ONNX opset V (several V per case)
  NAME.in.npy       the float32 input, [N, C, S1(, S2(, S3))]
  NAME.out.npy      the module's own float32 CPU output for that input
and refusals/NAME.onnx (files a reader must refuse), plus the tables
  cases.tsv          one line per case (opsets, shapes, axes, folding, ...)
  ops.tsv            one line per .onnx: opset, graph inputs/outputs, node ops
  not_exported.tsv   (case, opset) pairs that torch 1.13 refused to export
  refusals/refusals.tsv
Every module is built from a fixed seed and put in eval mode; weight_norm is
applied in its training form and removed (torch.nn.utils.remove_weight_norm)
before export, except in the case marked "kept" in cases.tsv.  The output is
also computed in float64 (same module, same input, cast up) and
max|f32 - f64| is recorded in cases.tsv.

Deterministic: a second run writes the same bytes (checked with cmp).
"""

import copy
import io
import os
import struct
import sys
import warnings
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import remove_weight_norm, weight_norm

HERE = os.path.dirname(os.path.abspath(__file__))
REFUSALS = os.path.join(HERE, "refusals")
torch.set_num_threads(1)
warnings.filterwarnings("ignore")

STANDARD_OPSETS = (9, 11, 13, 17)


def seed_of(name):
    return zlib.crc32(name.encode())


# --------------------------------------------------------------------------
# building blocks


def wn(m):
    """weight_norm in its training form, with g != ||v|| so removal matters."""
    m = weight_norm(m)
    with torch.no_grad():
        m.weight_g.mul_(torch.rand(m.weight_g.shape) + 0.5)
    return m


def strip_weight_norm(module):
    for m in module.modules():
        if hasattr(m, "weight_g"):
            remove_weight_norm(m)
    return module


class ResBlock1(nn.Module):
    """HiFi-GAN ResBlock1: x = x + c2(lrelu(c1(lrelu(x)))), c1 dilated."""

    def __init__(self, c, k, dilations=(1, 3, 5)):
        super().__init__()
        self.convs1 = nn.ModuleList(
            [wn(nn.Conv1d(c, c, k, dilation=d, padding=d * (k - 1) // 2))
             for d in dilations])
        self.convs2 = nn.ModuleList(
            [wn(nn.Conv1d(c, c, k, padding=(k - 1) // 2)) for _ in dilations])

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c1(F.leaky_relu(x, 0.1))
            xt = c2(F.leaky_relu(xt, 0.1))
            x = xt + x
        return x


class HiFiGANSmall(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_pre = wn(nn.Conv1d(8, 32, 7, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        c = 32
        for u in (4, 2):
            self.ups.append(wn(nn.ConvTranspose1d(c, c // 2, 2 * u, stride=u,
                                                  padding=u // 2)))
            c //= 2
            for k in (3, 5, 7):
                self.resblocks.append(ResBlock1(c, k))
        self.conv_post = wn(nn.Conv1d(c, 1, 7, padding=3))

    def forward(self, x):
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, 0.1))
            xs = None
            for j in range(3):
                r = self.resblocks[3 * i + j](x)
                xs = r if xs is None else xs + r
            x = xs / 3
        x = self.conv_post(F.leaky_relu(x))
        return torch.tanh(x)


class Snake(nn.Module):
    """DAC's snake: x + 1/(alpha + 1e-9) * sin(alpha x)^2, alpha [1, C, 1]."""

    def __init__(self, c):
        super().__init__()
        self.alpha = nn.Parameter(torch.rand(1, c, 1) * 1.5 + 0.5)

    def forward(self, x):
        return x + (self.alpha + 1e-9).reciprocal() * torch.sin(
            self.alpha * x).pow(2)


class ResidualUnit(nn.Module):
    def __init__(self, c, d):
        super().__init__()
        self.block = nn.Sequential(
            Snake(c), wn(nn.Conv1d(c, c, 7, dilation=d, padding=3 * d)),
            Snake(c), wn(nn.Conv1d(c, c, 1)))

    def forward(self, x):
        return x + self.block(x)


def snake_net():
    return nn.Sequential(
        wn(nn.Conv1d(2, 8, 7, padding=3)), Snake(8),
        wn(nn.ConvTranspose1d(8, 4, 4, stride=2, padding=1)),
        ResidualUnit(4, 1), ResidualUnit(4, 3), ResidualUnit(4, 9),
        Snake(4), wn(nn.Conv1d(4, 1, 7, padding=3)))


class UNet1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Conv1d(2, 8, 3, padding=1)
        self.down = nn.Conv1d(8, 16, 4, stride=2, padding=1)
        self.mid = nn.Conv1d(16, 16, 3, padding=1)
        self.up = nn.ConvTranspose1d(16, 8, 4, stride=2, padding=1)
        self.out = nn.Conv1d(16, 1, 3, padding=1)

    def forward(self, x):
        skip = F.relu(self.enc(x))
        h = F.relu(self.down(skip))
        h = F.relu(self.mid(h))
        h = self.up(h)
        return self.out(torch.cat([h, skip], dim=1))


def pool_1d():
    return nn.Sequential(
        nn.Conv1d(3, 6, 3, padding=1), nn.ReLU(),
        nn.MaxPool1d(3, stride=2, padding=1),                       # 30 -> 15
        nn.Conv1d(6, 6, 3, padding=1), nn.ReLU(),
        nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False),  # 8
        nn.Conv1d(6, 6, 3, padding=1),
        nn.AvgPool1d(3, stride=1, padding=1, count_include_pad=True),   # 8
        nn.Conv1d(6, 2, 1))


def pool_ceil_dil_1d():
    return nn.Sequential(
        nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(),
        nn.MaxPool1d(2, stride=2, ceil_mode=True),                  # 25 -> 13
        nn.Conv1d(4, 4, 3, padding=1), nn.ReLU(),
        nn.MaxPool1d(2, stride=1, padding=1, dilation=2),           # 13
        nn.Conv1d(4, 4, 3, padding=1),
        # ceil: windows start at -1, 2, 5, 8, 11; the last one covers 11, 12
        # and the right pad (13) and runs past it (14).  No window starts in
        # the right pad, so PyTorch's and ONNX's ceil_mode counts agree.
        nn.AvgPool1d(4, stride=3, padding=1, ceil_mode=True,
                     count_include_pad=False),                      # 5
        nn.Conv1d(4, 2, 1))


def pool_2d():
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d((3, 2), stride=(2, 1), padding=(1, 0)),        # 16x12 -> 8x11
        nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
        nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=True),   # 4x6
        nn.Conv2d(4, 4, 3, padding=1),
        nn.AvgPool2d((2, 3), stride=1, padding=(1, 1),
                     count_include_pad=False),                      # 5x6
        nn.Conv2d(4, 1, 1))


def fsrcnn(d=16, s=8, m=2):
    layers = [nn.Conv2d(1, d, 5, padding=2), nn.PReLU(d),
              nn.Conv2d(d, s, 1), nn.PReLU(s)]
    for _ in range(m):
        layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
    layers += [nn.Conv2d(s, d, 1), nn.PReLU(d),
               nn.ConvTranspose2d(d, 1, 9, stride=2, padding=4,
                                  output_padding=1)]
    net = nn.Sequential(*layers)
    with torch.no_grad():  # PReLU slopes away from the 0.25 default
        for mod in net:
            if isinstance(mod, nn.PReLU):
                mod.weight.copy_(torch.rand(mod.weight.shape) * 0.5)
    return net


class PixelShuffleDCR(torch.autograd.Function):
    """DepthToSpace in DCR order: y[n,c,h*r+i,w*r+j] = x[n,(i*r+j)*C+c,h,w].

    PyTorch's own symbolics never write mode=DCR (pixel_shuffle is CRD), so
    this Function gives the export its DepthToSpace node by hand."""

    @staticmethod
    def forward(ctx, x, r):
        n, crr, h, w = x.shape
        c = crr // (r * r)
        return (x.reshape(n, r, r, c, h, w).permute(0, 3, 4, 1, 5, 2)
                .reshape(n, c, h * r, w * r))

    @staticmethod
    def symbolic(g, x, r):
        opset = getattr(g, "opset", None)
        if opset is None:
            from torch.onnx._globals import GLOBALS
            opset = GLOBALS.export_onnx_opset_version
        if opset >= 11:
            return g.op("DepthToSpace", x, blocksize_i=r, mode_s="DCR")
        return g.op("DepthToSpace", x, blocksize_i=r)  # DCR is the only mode


class ESPCN(nn.Module):
    def __init__(self, r=2, dcr=False):
        super().__init__()
        self.r, self.dcr = r, dcr
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.Tanh(),
            nn.Conv2d(16, 8, 3, padding=1), nn.Tanh(),
            nn.Conv2d(8, r * r, 3, padding=1))
        self.shuffle = nn.PixelShuffle(r)

    def forward(self, x):
        x = self.body(x)
        x = PixelShuffleDCR.apply(x, self.r) if self.dcr else self.shuffle(x)
        return torch.sigmoid(x)


def randomize_bn(bn):
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(bn.running_mean.shape) * 0.5)
        bn.running_var.copy_(torch.rand(bn.running_var.shape) + 0.5)
        bn.weight.copy_(torch.rand(bn.weight.shape) + 0.5)
        bn.bias.copy_(torch.randn(bn.bias.shape) * 0.2)
    return bn


class BnActA(nn.Module):
    """1d: Conv -> BN (fused into the Conv by the exporter) -> ReLU -> BN (kept:
    BatchNormalization) -> Dropout (eval) -> Pad -> Conv -> ten activations
    summed -> Conv 1x1."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(4, 8, 3, padding=1)
        self.bn1 = randomize_bn(nn.BatchNorm1d(8))
        self.bn2 = randomize_bn(nn.BatchNorm1d(8))
        self.drop = nn.Dropout(0.3)
        self.pad = nn.ConstantPad1d((2, 1), 0.5)
        self.conv2 = nn.Conv1d(8, 8, 3)          # L + 3 - 2
        self.act = nn.ModuleList([nn.ReLU6(), nn.Hardsigmoid(), nn.Hardswish(),
                                  nn.ELU(0.8), nn.SELU(), nn.Softplus(),
                                  nn.Softsign(), nn.Sigmoid(), nn.GELU()])
        self.conv3 = nn.Conv1d(8, 2, 1)

    def forward(self, x):
        h = self.drop(self.bn2(F.relu(self.bn1(self.conv1(x)))))
        h = self.conv2(self.pad(h)) * 3.0        # spread values over the knees
        y = F.hardtanh(h, -0.5, 0.8)              # Clip
        for a in self.act:
            y = y + a(h)
        return self.conv3(y)


class BnActB(nn.Module):
    """2d, elementwise maths: Abs, Neg, Sqrt, Reciprocal, Exp, Log, Sin, Cos,
    Pow 2 and 3, Div and Sub by constants, Max/Min with constants and between
    branches, clamp, a valued asymmetric Pad."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 6, 3, padding=1)
        self.bn = randomize_bn(nn.BatchNorm2d(6))
        self.pad = nn.ConstantPad2d((1, 2, 0, 3), -0.25)   # W (1, 2), H (0, 3)
        self.conv2a = nn.Conv2d(6, 4, 3)
        self.conv2b = nn.Conv2d(6, 4, 3)
        self.conv3 = nn.Conv2d(4, 1, 1)

    def forward(self, x):
        h = self.bn(F.relu(self.conv1(x)))
        h = self.pad(h)
        a = self.conv2a(h)
        b = self.conv2b(h)
        y = torch.abs(a) - b                                  # Abs, Sub
        y = y + torch.sqrt(torch.abs(b) + 1e-3)               # Sqrt
        y = y + torch.reciprocal(a * a + 1.0)                 # Reciprocal
        y = y + torch.exp(-(b * b))                           # Neg, Exp
        y = y + torch.log(a.pow(2) + 1.0)                     # Pow 2, Log
        y = y + torch.sin(a) * torch.cos(b)                   # Sin, Cos
        y = y + b.pow(3) / 7.0 - 0.5                          # Pow 3, Div, Sub
        y = y + torch.maximum(a, b) - torch.minimum(a, b)     # Max, Min
        y = torch.maximum(y, torch.tensor(-1.5))              # Max const
        y = torch.minimum(y, torch.tensor(4.0))               # Min const
        y = torch.clamp(y, min=-1.0)                          # clamp min only
        y = torch.clamp(y, -1.2, 3.5)                         # clamp both
        return self.conv3(-y)


class CeluHardswish(nn.Module):
    """CELU (ONNX Celu, opset >= 12 in torch 1.13) and Hardswish (HardSwish
    at opset >= 14, HardSigmoid + Mul below)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(3, 6, 3, padding=1)
        self.celu = nn.CELU(0.7)
        self.conv2 = nn.Conv1d(6, 6, 3, padding=1)
        self.hswish = nn.Hardswish()
        self.conv3 = nn.Conv1d(6, 2, 3, padding=1)

    def forward(self, x):
        h = self.celu(self.conv1(x) * 2.0)
        h = self.hswish(self.conv2(h) * 4.0)
        return self.conv3(h)


class Residual3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv3d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv3d(4, 4, 3, padding=1)
        self.up = nn.ConvTranspose3d(4, 1, (2, 2, 2), stride=(2, 2, 2))

    def forward(self, x):
        h = self.conv1(x)
        h = h + self.conv2(F.relu(h))
        return self.up(h)


def asym_pads_1d():
    return nn.Sequential(
        nn.ConstantPad1d((2, 0), 0.0), nn.Conv1d(4, 4, 3),           # causal
        nn.ReLU(),
        nn.ConstantPad1d((1, 2), 0.0), nn.Conv1d(4, 6, 4),           # 'same', k even
        nn.ConvTranspose1d(6, 4, 5, stride=3, padding=2, output_padding=1,
                           groups=2, dilation=2))


def asym_pads_2d():
    return nn.Sequential(
        nn.ConstantPad2d((1, 2, 3, 0), 0.0), nn.Conv2d(2, 4, 4),     # H (3,0) W (1,2)
        nn.ReLU(),
        nn.ConvTranspose2d(4, 4, (3, 4), stride=(2, 3), padding=(1, 0),
                           output_padding=(1, 2), groups=2, dilation=(2, 1)))


def same_pad_1d():
    # torch 1.13 cannot export padding='same' (aten::_convolution_mode);
    # kept so not_exported.tsv says so.
    return nn.Sequential(nn.Conv1d(2, 2, 4, padding="same"))


# --------------------------------------------------------------------------
# the cases

AX1 = ({0: "batch", 2: "len"}, {0: "batch", 2: "len_out"})
AX2 = ({0: "batch", 2: "height", 3: "width"},
       {0: "batch", 2: "height_out", 3: "width_out"})
AX2S = ({0: "batch", 2: "height"}, {0: "batch", 2: "height_out"})
AX3 = ({0: "batch", 2: "time"}, {0: "batch", 2: "time_out"})


class Case:
    def __init__(self, name, rank, build, in_shape, desc, *, opsets=None,
                 axes=None, fold=True, wnorm="-", try_opsets=(), seed=None):
        self.__dict__.update(locals())
        del self.__dict__["self"]
        self.opsets = STANDARD_OPSETS if opsets is None else tuple(opsets)
        # opsets also tried and expected to fail (recorded in not_exported.tsv)
        self.try_opsets = tuple(try_opsets)
        self.seed = seed_of(seed or name)  # seed: share another case's draw


CASES = [
    Case("hifigan_small", 1, HiFiGANSmall, [2, 8, 12],
         "HiFi-GAN-like generator: Conv1d(8,32,7) -> 2x[LeakyReLU(0.1), "
         "ConvTranspose1d(c,c/2,2u,u,u/2) u=4,2, mean of 3 ResBlock1 "
         "(k 3,5,7; dilations 1,3,5)] -> LeakyReLU -> Conv1d(8,1,7) -> tanh",
         axes=AX1, wnorm="removed"),
    Case("hifigan_small_wn", 1, HiFiGANSmall, [2, 8, 12],
         "hifigan_small (same seed, weights, input) exported WITH weight_norm "
         "left in: each weight is g * v / ||v|| computed by nodes "
         "(ReduceL2, Div, Mul), constant folding off so they stay",
         opsets=(11, 13, 17), axes=AX1, fold=False, wnorm="kept",
         seed="hifigan_small"),
    Case("snake_net", 1, snake_net, [1, 2, 24],
         "DAC-style: Conv1d -> Snake -> ConvTranspose1d x2 -> 3 residual "
         "units (Snake, dilated Conv1d d=1,3,9, Snake, Conv1d k1) -> Snake -> "
         "Conv1d; Snake = x + 1/(alpha+1e-9)*sin(alpha x)^2, alpha [1,C,1]",
         fold=False, wnorm="removed"),
    Case("unet1d", 1, UNet1d, [2, 2, 20],
         "U-Net: Conv1d -> Conv1d stride 2 -> Conv1d -> ConvTranspose1d "
         "stride 2 -> Concat(up, skip of the first Conv1d) -> Conv1d; "
         "input length must be even", axes=AX1),
    Case("pool_1d", 1, pool_1d, [1, 3, 30],
         "Conv1d/ReLU with MaxPool1d(3,2,1), AvgPool1d(3,2,1) "
         "count_include_pad=False, AvgPool1d(3,1,1) count_include_pad=True "
         "(written as Pad + AveragePool)"),
    Case("pool_ceil_dil_1d", 1, pool_ceil_dil_1d, [1, 2, 25],
         "MaxPool1d(2,2) ceil_mode (25 -> 13, partial last window), "
         "MaxPool1d(2,1,1) dilation 2, AvgPool1d(4,3,1) ceil_mode "
         "count_include_pad=False; not exportable at opset 9",
         opsets=(10, 11, 13, 17), try_opsets=(9,), axes=AX1),
    Case("pool_2d", 2, pool_2d, [1, 2, 16, 12],
         "Conv2d/ReLU with MaxPool2d((3,2),(2,1),(1,0)), AvgPool2d(3,2,1) "
         "count_include_pad=True, AvgPool2d((2,3),1,1) count_include_pad=False",
         axes=AX2),
    Case("fsrcnn", 2, fsrcnn, [1, 1, 24, 32],
         "FSRCNN(d=16,s=8,m=2): Conv2d 5x5, PReLU, shrink 1x1, 2x(Conv2d 3x3, "
         "PReLU), expand 1x1, PReLU, ConvTranspose2d(16,1,9,2,4,op=1)"),
    Case("espcn", 2, ESPCN, [1, 1, 20, 28],
         "ESPCN r=2: Conv2d 5x5 Tanh Conv2d 3x3 Tanh Conv2d 3x3 -> "
         "PixelShuffle(2) -> Sigmoid; PixelShuffle is DepthToSpace mode=CRD at "
         "opset >= 11, Reshape/Transpose/Reshape at opset 9", axes=AX2),
    Case("espcn_dcr", 2, lambda: ESPCN(dcr=True), [1, 1, 20, 28],
         "espcn with the channels shuffled in DCR order: DepthToSpace "
         "mode=DCR (no mode attribute at opset 9), written by an "
         "autograd.Function symbolic since torch never writes DCR"),
    Case("bn_act_a", 1, BnActA, [2, 4, 16],
         "Conv1d, BatchNorm1d (fused into the Conv by the exporter), ReLU, "
         "BatchNorm1d kept (BatchNormalization), Dropout (eval: gone), "
         "ConstantPad1d((2,1),0.5) on the streamed axis, Conv1d; sum of "
         "hardtanh(-0.5,0.8) (Clip), ReLU6, Hardsigmoid, Hardswish, ELU(0.8), "
         "SELU, Softplus, Softsign, Sigmoid, GELU exact (Erf)", axes=AX1),
    Case("bn_act_b", 2, BnActB, [1, 2, 10, 12],
         "Conv2d, ReLU, BatchNorm2d kept, ConstantPad2d(W (1,2), H (0,3), "
         "-0.25), two Conv2d branches; Abs Sub Sqrt Reciprocal Neg Exp Pow2 Log "
         "Sin Cos Pow3 Div, Max/Min of the branches, Max/Min with constants, "
         "clamp(min) and clamp(min,max); constant folding off", fold=False),
    Case("celu_hardswish", 1, CeluHardswish, [1, 3, 18],
         "CELU(0.7) (Celu, torch 1.13 exports it from opset 12) and Hardswish "
         "(HardSwish from opset 14, HardSigmoid+Mul below)",
         opsets=(12, 13, 14, 17), try_opsets=(9, 11), axes=AX1),
    Case("residual3d", 3, Residual3d, [1, 1, 4, 6, 8],
         "Conv3d(1,4,3,p1), ReLU, Conv3d(4,4,3,p1) + residual Add, "
         "ConvTranspose3d(4,1,2,s2); T streamed (dynamic), H W static",
         axes=AX3),
    Case("asym_pads_1d", 1, asym_pads_1d, [1, 4, 16],
         "ConstantPad1d((2,0)) + Conv1d k3 (causal), ConstantPad1d((1,2)) + "
         "Conv1d k4 ('same' for an even kernel, as torch pads it), "
         "ConvTranspose1d(6,4,5,s3,p2,op1,groups 2,dilation 2); folding off",
         fold=False),
    Case("asym_pads_2d", 2, asym_pads_2d, [1, 2, 10, 12],
         "ConstantPad2d(H (3,0), W (1,2)) + Conv2d 4x4, ReLU, "
         "ConvTranspose2d(4,4,(3,4),s(2,3),p(1,0),op(1,2),groups 2,"
         "dilation (2,1)); dynamic height and width", axes=AX2),
    Case("same_pad_1d", 1, same_pad_1d, [1, 2, 10],
         "Conv1d(2,2,4,padding='same'): torch 1.13 cannot export it",
         opsets=(), try_opsets=(11, 13, 17)),
]


# --------------------------------------------------------------------------
# refusals: graphs a streaming reader must refuse


class LSTMNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4)

    def forward(self, x):                      # [N, C, L] -> [L, N, C]
        y, _ = self.lstm(x.permute(2, 0, 1))
        return y.permute(1, 2, 0)


class Softmax2(nn.Module):
    def forward(self, x):
        return torch.softmax(x, dim=2)


class ReshapeFromShape(nn.Module):
    def forward(self, x):
        n, c, length = x.shape
        return x.reshape(n, c * 2, length // 2)


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 2, 3, padding=1)

    def forward(self, x, y):
        return self.conv(x) + y


class Int64Input(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 2, 3, padding=1)

    def forward(self, x):
        return self.conv(x.float())


def refusal_list():
    def conv_in(m):
        return nn.Sequential(nn.Conv1d(3, 3, 3, padding=1), m)

    f = torch.float32
    return [
        ("lstm", LSTMNet(), (torch.randn(1, 3, 8),), AX1, 13,
         "an LSTM over the streamed axis (node LSTM: state over all time)"),
        ("global_avg_pool", conv_in(nn.AdaptiveAvgPool1d(1)),
         (torch.randn(1, 3, 8),), AX1, 13,
         "GlobalAveragePool: reduces the whole streamed axis"),
        ("instance_norm", conv_in(nn.InstanceNorm1d(3, affine=True)),
         (torch.randn(1, 3, 8),), AX1, 13,
         "InstanceNormalization: statistics over the whole streamed axis"),
        ("softmax_streamed", conv_in(Softmax2()), (torch.randn(1, 3, 8),),
         AX1, 13, "Softmax with axis=2, the streamed axis"),
        ("reshape_from_shape", ReshapeFromShape(), (torch.randn(1, 3, 8),),
         ({0: "batch", 2: "len"}, {0: "batch", 2: "len_out"}), 13,
         "Reshape whose shape is computed from Shape of the input "
         "(Shape/Gather/Div/Unsqueeze/Concat), folding the streamed axis "
         "into channels"),
        ("two_inputs", TwoInputs(),
         (torch.randn(1, 2, 8, dtype=f), torch.randn(1, 2, 8, dtype=f)),
         None, 13, "two graph inputs ('input', 'input2')"),
        ("int64_input", Int64Input(),
         (torch.randint(-3, 4, (1, 2, 8), dtype=torch.int64),), AX1, 13,
         "graph input of type int64 (then Cast to float)"),
        ("rank2_input", nn.Conv1d(2, 3, 3, padding=1), (torch.randn(2, 8),),
         None, 13, "rank-2 graph input [C, L] (unbatched Conv1d, wrapped in "
         "Unsqueeze/Squeeze)"),
    ]


# --------------------------------------------------------------------------
# export and a tiny ONNX protobuf reader (for ops.tsv; no onnx package needed)


def export_bytes(module, example, opset, axes, fold, input_names=("input",)):
    buf = io.BytesIO()
    kw = {}
    if axes is not None:
        dyn = {n: axes[0] for n in input_names}
        dyn["output"] = axes[1]
        kw["dynamic_axes"] = dyn
    torch.onnx.export(module, example, buf, opset_version=opset,
                      input_names=list(input_names), output_names=["output"],
                      do_constant_folding=fold, **kw)
    return buf.getvalue()


def pb_fields(buf):
    """Yield (field number, wire type, value) of one protobuf message."""
    i, n = 0, len(buf)
    while i < n:
        key, i = varint(buf, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            ln, i = varint(buf, i)
            v, i = buf[i:i + ln], i + ln
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt}")
        yield field, wt, v


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


ELEM = {1: "f32", 6: "i32", 7: "i64", 9: "bool", 11: "f64"}


def value_info(buf):
    name, elem, dims = "", "?", []
    for f, _, v in pb_fields(buf):
        if f == 1:
            name = v.decode()
        elif f == 2:
            for f2, _, t in pb_fields(v):
                if f2 != 1:
                    continue
                for f3, _, tv in pb_fields(t):
                    if f3 == 1:
                        elem = ELEM.get(tv, str(tv))
                    elif f3 == 2:
                        for f4, _, d in pb_fields(tv):
                            if f4 != 1:
                                continue
                            dim = "?"
                            for f5, _, dv in pb_fields(d):
                                dim = str(dv) if f5 == 1 else dv.decode()
                            dims.append(dim)
    return f"{name}:{elem}[{','.join(dims)}]"


def summarize(model):
    """opset, inputs, outputs, #initializers, op counts, notes of one model."""
    opset, graph = None, None
    for f, _, v in pb_fields(model):
        if f == 8:
            dom, ver = "", None
            for f2, _, v2 in pb_fields(v):
                if f2 == 1:
                    dom = v2.decode()
                elif f2 == 2:
                    ver = v2
            if dom in ("", "ai.onnx"):
                opset = ver
        elif f == 7:
            graph = v
    ops, order, notes = {}, [], set()
    inputs, outputs, n_init = [], [], 0
    for f, _, v in pb_fields(graph):
        if f == 1:
            op, attrs = "", {}
            for f2, _, v2 in pb_fields(v):
                if f2 == 4:
                    op = v2.decode()
                elif f2 == 5:
                    an, av = "", None
                    for f3, wt, v3 in pb_fields(v2):
                        if f3 == 1:
                            an = v3.decode()
                        elif f3 == 3:
                            av = v3
                        elif f3 == 4:
                            av = v3.decode()
                        elif f3 == 2:
                            av = round(struct.unpack("<f", v3)[0], 6)
                    attrs[an] = av
            if op not in ops:
                order.append(op)
            ops[op] = ops.get(op, 0) + 1
            if op == "DepthToSpace":
                notes.add(f"DepthToSpace mode={attrs.get('mode', '(none)')}")
            if op in ("MaxPool", "AveragePool"):
                for a in ("ceil_mode", "dilations", "count_include_pad"):
                    if attrs.get(a):
                        notes.add(f"{op} {a}")
            if op == "Pad" and "pads" in attrs:
                notes.add("Pad pads attribute")
        elif f == 5:
            n_init += 1
        elif f == 11:
            inputs.append(value_info(v))
        elif f == 12:
            outputs.append(value_info(v))
    opstr = " ".join(f"{o}x{ops[o]}" if ops[o] > 1 else o for o in sorted(order))
    return opset, inputs, outputs, n_init, opstr, sorted(notes)


# --------------------------------------------------------------------------


def build(case):
    torch.manual_seed(case.seed)
    module = case.build()
    if case.wnorm == "removed":
        strip_weight_norm(module)
    module.eval()
    gen = torch.Generator().manual_seed(case.seed)
    x = torch.randn(case.in_shape, generator=gen, dtype=torch.float64).float()
    with torch.no_grad():
        y = module(x)
        y64 = copy.deepcopy(module).double()(x.double())
    err = float((y.double() - y64).abs().max())
    return module, x, y, err


def shape_str(s):
    return "[" + ",".join(map(str, s)) + "]"


def axes_str(axes):
    if axes is None:
        return "static"
    return "dynamic:" + ",".join(f"{k}={v}" for k, v in axes[0].items())


def main():
    os.makedirs(REFUSALS, exist_ok=True)
    rows = ["# NAME\tOPSETS\tRANK\tINPUT_SHAPE\tOUTPUT_SHAPE\tAXES\t"
            "CONST_FOLDING\tWEIGHT_NORM\tMAX_ABS_F32_F64\tMAX_ABS_OUT\t"
            "DESCRIPTION  (generated by make_networks.py)"]
    ops_rows = ["# FILE\tOPSET\tINPUTS\tOUTPUTS\tINITIALIZERS\tOPS\tNOTES"]
    fail_rows = ["# NAME\tOPSET\tTORCH_1.13_ERROR (first line)"]
    for case in CASES:
        module, x, y, err = build(case)
        done = []
        for opset in sorted(set(case.opsets) | set(case.try_opsets)):
            try:
                data = export_bytes(module, (x,), opset, case.axes, case.fold)
            except Exception as e:  # noqa: BLE001 - recorded, not hidden
                msg = str(e).strip().splitlines()[0].split(" Please feel free")[0]
                if opset in case.opsets:
                    raise SystemExit(f"{case.name} opset {opset}: {msg}")
                fail_rows.append(f"{case.name}\t{opset}\t{msg}")
                continue
            if opset not in case.opsets:
                raise SystemExit(f"{case.name} opset {opset} exported; "
                                 "expected a failure")
            fname = f"{case.name}.opset{opset}.onnx"
            with open(os.path.join(HERE, fname), "wb") as fh:
                fh.write(data)
            got, ins, outs, n_init, opstr, notes = summarize(data)
            assert got == opset, (fname, got)
            ops_rows.append("\t".join([fname, str(got), " ".join(ins),
                                       " ".join(outs), str(n_init), opstr,
                                       "; ".join(notes) or "-"]))
            done.append(opset)
        if not done:
            print(f"{case.name:18s} not exported")
            continue
        base = os.path.join(HERE, case.name)
        np.save(base + ".in.npy", np.ascontiguousarray(x.numpy(), np.float32))
        np.save(base + ".out.npy", np.ascontiguousarray(y.numpy(), np.float32))
        rows.append("\t".join([
            case.name, ",".join(map(str, done)), str(case.rank),
            shape_str(x.shape), shape_str(y.shape), axes_str(case.axes),
            "on" if case.fold else "off", case.wnorm, f"{err:.3g}",
            f"{float(y.abs().max()):.4g}", case.desc]))
        print(f"{case.name:18s} {shape_str(x.shape)} -> {shape_str(y.shape)} "
              f"opsets {done} f32-f64 {err:.3g}")

    ref_rows = ["# FILE\tOPSET\tWHAT IS WRONG  (generated by make_networks.py)"]
    for name, module, example, axes, opset, what in refusal_list():
        torch.manual_seed(seed_of(name))
        module.eval()
        for m in module.modules():          # reproducible parameters
            for p in m.parameters(recurse=False):
                with torch.no_grad():
                    p.copy_(torch.randn(p.shape) * 0.5)
        names = ("input", "input2") if len(example) == 2 else ("input",)
        data = export_bytes(module, example, opset, axes, True, names)
        fname = f"{name}.onnx"
        with open(os.path.join(REFUSALS, fname), "wb") as fh:
            fh.write(data)
        _, ins, outs, n_init, opstr, notes = summarize(data)
        ref_rows.append(f"{fname}\t{opset}\t{what}")
        ops_rows.append("\t".join([f"refusals/{fname}", str(opset),
                                   " ".join(ins), " ".join(outs), str(n_init),
                                   opstr, "; ".join(notes) or "-"]))
        print(f"refusals/{fname:24s} {opstr}")

    for fname, lines in (("cases.tsv", rows), ("ops.tsv", ops_rows),
                         ("not_exported.tsv", fail_rows),
                         (os.path.join("refusals", "refusals.tsv"), ref_rows)):
        with open(os.path.join(HERE, fname), "w") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
