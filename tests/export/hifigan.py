"""A small generator laid out like HiFi-GAN's (jik876/hifi-gan, V1), for the
export tests: conv_pre (Conv1d), ups.N (ConvTranspose1d), resblocks.N with
convs1.M / convs2.M (Conv1d, Cin = Cout), conv_post (Conv1d), all
weight-normed, so its state_dict has HiFi-GAN's names and weight_g/weight_v.

A module of its own so that a pickled Generator can be unpickled by the
export tool (PYTHONPATH=tests/export).  Channels are small but keep
HiFi-GAN's pattern: conv_pre's in_channels (mel bins) do not divide its
out_channels, each up layer halves the channels.
"""

import torch
from torch.nn import functional as F
from torch.nn.utils import remove_weight_norm, weight_norm

MELS = 10
CHANNELS = 32
UPS = ((4, 8), (2, 4))  # (stride, kernel) of each up layer, as HiFi-GAN's


class ResBlock1(torch.nn.Module):
    def __init__(self, channels, kernel=3, dilations=(1, 3, 5)):
        super().__init__()
        self.convs1 = torch.nn.ModuleList([
            weight_norm(torch.nn.Conv1d(channels, channels, kernel,
                                        dilation=d,
                                        padding=d * (kernel - 1) // 2))
            for d in dilations])
        self.convs2 = torch.nn.ModuleList([
            weight_norm(torch.nn.Conv1d(channels, channels, kernel,
                                        padding=(kernel - 1) // 2))
            for _ in dilations])

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, 0.1)), 0.1))
        return x


class Generator(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_pre = weight_norm(torch.nn.Conv1d(MELS, CHANNELS, 7,
                                                    padding=3))
        self.ups = torch.nn.ModuleList()
        self.resblocks = torch.nn.ModuleList()
        channels = CHANNELS
        for stride, kernel in UPS:
            self.ups.append(weight_norm(torch.nn.ConvTranspose1d(
                channels, channels // 2, kernel, stride,
                padding=(kernel - stride) // 2)))
            channels //= 2
            self.resblocks.append(ResBlock1(channels))
        self.conv_post = weight_norm(torch.nn.Conv1d(channels, 1, 7,
                                                     padding=3))

    def forward(self, x):
        x = self.conv_pre(x)
        for up, block in zip(self.ups, self.resblocks):
            x = block(up(F.leaky_relu(x, 0.1)))
        return torch.tanh(self.conv_post(F.leaky_relu(x)))

    def remove_weight_norm(self):
        """As HiFi-GAN does before inference (TorchScript cannot script the
        weight-norm hooks)."""
        for module in self.modules():
            if hasattr(module, "weight_g"):
                remove_weight_norm(module)
