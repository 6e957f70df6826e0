#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora: small valid files from tests/golden and
malformed variants, one fault each, so libFuzzer starts from every branch of
the loaders. Standard library only; run from anywhere:
    python3 tests/fuzz/make_corpus.py
The outputs are committed; rerun after changing this script."""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "golden")


def reset(name):
    path = os.path.join(HERE, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def safetensors(header, data, pad=True):
    """A file from a header (dict or raw str) and data bytes."""
    if isinstance(header, bytes):
        raw = header
    else:
        text = header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))
        raw = text.encode("utf-8")
    if pad:
        raw += b" " * ((8 - len(raw) % 8) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def weight_entry(shape, begin=0, dtype="F32", size=4):
    count = 1
    for d in shape:
        count *= d
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, begin + count * size]}


def model_corpus():
    out = reset("corpus-model")
    valid = ["k1_pointwise_1d", "override_1d", "f16_weights_1d", "bf16_weights_2d",
             "f64_weights_3d", "groups2_3d", "stride3_op2_1d", "prefix_1d",
             "dilation3_s2_1d", "len1_3d", "depthwise_mult_1d", "stride_mix_3d"]
    for name in valid:
        shutil.copy(os.path.join(GOLDEN, name + ".safetensors"),
                    os.path.join(out, "valid-" + name + ".safetensors"))

    w = struct.pack("<6f", 0.5, -1, 2, 0.25, 1, -0.5)  # [1, 2, 3] float32
    b = struct.pack("<2f", 0.1, -0.2)
    base = {"__metadata__": {"stride": "2", "padding": "1"},
            "weight": weight_entry([1, 2, 3]), "bias": weight_entry([2], 24)}

    def variant(**changes):
        h = json.loads(json.dumps(base))
        for k, v in changes.items():
            if v is None:
                h.pop(k, None)
            else:
                h[k] = v
        return h

    def meta(**kv):
        m = dict(base["__metadata__"])
        m.update(kv)
        return variant(__metadata__=m)

    cases = {
        "valid-small": safetensors(base, w + b),
        "valid-no-metadata": safetensors(variant(__metadata__=None), w + b),
        "valid-lists": safetensors(meta(stride="[3]", output_padding="2", dilation="1",
                                        groups="1"), w + b),
        "valid-other-tensors": safetensors(
            {"other": weight_entry([2], 0, "I32"), "weight": weight_entry([1, 2, 3], 8),
             "bias": weight_entry([2], 32)}, b + w + b),
        "empty": b"",
        "short": b"\x08\x00\x00",
        "zero-header": struct.pack("<Q", 0),
        "header-over-limit": struct.pack("<Q", 100000001) + b"{}",
        "header-past-end": struct.pack("<Q", 4096) + b'{"weight":{}}',
        "truncated-data": safetensors(base, w + b)[:-4],
        "trailing-data": safetensors(base, w + b + b"\0\0\0\0"),
        "not-utf8": safetensors(b'{"weight\xff":1}', b""),
        "nul-in-header": safetensors('{"a":"b\x00"}', b""),
        "header-list": safetensors("[1,2,3]", b""),
        "header-string": safetensors('"weight"', b""),
        "no-tensors": safetensors("{}", b""),
        "duplicate-tensor": safetensors(
            '{"weight":%s,"weight":%s}' % (json.dumps(weight_entry([1, 2, 3])),
                                           json.dumps(weight_entry([1, 2, 3]))), w),
        "duplicate-metadata-key": safetensors(
            '{"__metadata__":{"stride":"2","stride":"3"},"weight":%s}'
            % json.dumps(weight_entry([1, 2, 3])), w),
        "metadata-number": safetensors(meta(stride=2), w + b),
        "metadata-not-object": safetensors(variant(__metadata__=["stride"]), w + b),
        "stride-negative": safetensors(meta(stride="-1"), w + b),
        "stride-zero": safetensors(meta(stride="0"), w + b),
        "stride-two-values": safetensors(meta(stride="[1,2]"), w + b),
        "stride-huge": safetensors(meta(stride="99999999999"), w + b),
        "stride-junk": safetensors(meta(stride="2x"), w + b),
        "groups-zero": safetensors(meta(groups="0"), w + b),
        "groups-not-dividing": safetensors(meta(groups="2"), w + b),
        "output-padding-too-large": safetensors(meta(output_padding="2"), w + b),
        "padding-huge": safetensors(meta(padding="2000000000"), w + b),
        "dilation-huge": safetensors(meta(dilation="2000000000"), w + b),
        "dtype-unknown": safetensors(variant(weight=dict(weight_entry([1, 2, 3]),
                                                         dtype="F99")), w + b),
        "dtype-int": safetensors(variant(weight=dict(weight_entry([1, 2, 3]),
                                                     dtype="I32")), w + b),
        "dtype-f64-size": safetensors(variant(weight=dict(weight_entry([1, 2, 3]),
                                                          dtype="F64")), w + b),
        "shape-negative": safetensors(variant(weight=dict(weight_entry([1, 2, 3]),
                                                          shape=[1, -2, 3])), w + b),
        "shape-zero": safetensors(variant(weight=weight_entry([1, 0, 3]),
                                          bias=weight_entry([2], 0)), b),
        "shape-overflow": safetensors(variant(weight=dict(weight_entry([1, 2, 3]),
                                                          shape=[2**62, 2**62, 4])), w + b),
        "shape-not-list": safetensors(variant(weight=dict(weight_entry([1, 2, 3]),
                                                          shape="[1,2,3]")), w + b),
        "rank-2": safetensors(variant(weight=weight_entry([2, 3]),
                                      bias=weight_entry([2], 24)), w + b),
        "rank-6": safetensors(variant(weight=weight_entry([1, 1, 1, 1, 2, 3]),
                                      bias=weight_entry([2], 24)), w + b),
        "bias-shape": safetensors(variant(bias=weight_entry([1, 2], 24)), w + b),
        "offsets-overlap": safetensors(variant(bias=weight_entry([2], 16)), w + b),
        "offsets-hole": safetensors(variant(bias=weight_entry([2], 28)), w + b + b"\0" * 4),
        "offsets-outside": safetensors(variant(bias=weight_entry([2], 1 << 40)), w + b),
        "offsets-reversed": safetensors(
            variant(bias={"dtype": "F32", "shape": [2], "data_offsets": [32, 24]}), w + b),
        "offsets-three": safetensors(
            variant(bias={"dtype": "F32", "shape": [2], "data_offsets": [24, 32, 40]}),
            w + b),
        "deep-nesting": safetensors('{"a":' + "[" * 100 + "]" * 100 + "}", b""),
        "integer-too-big": safetensors('{"a":99999999999999999999}', b""),
        "unpaired-surrogate": safetensors('{"\\ud800x":1}', b""),
        "escaped-nul": safetensors('{"a\\u0000":1}', b""),
        "escapes": safetensors('{"w\\u00e9\\n\\"":{"dtype":"F32","shape":[],'
                               '"data_offsets":[0,4]}}', b"\0\0\0\0"),
        "json-comment": safetensors('{/* c */"weight":1}', b""),
        "json-trailing": safetensors('{} {}', b""),
        # weight_norm pairs: g [1, 1, 1] (dim=0) or a scalar, v as the weight
        "valid-weight-norm": safetensors(
            {"weight_v": weight_entry([1, 2, 3]), "weight_g": weight_entry([1, 1, 1], 24),
             "bias": weight_entry([2], 28)}, w + struct.pack("<f", 2) + b),
        "valid-weight-norm-parametrizations": safetensors(
            {"up.parametrizations.weight.original1": weight_entry([1, 2, 3]),
             "up.parametrizations.weight.original0": weight_entry([], 24),
             "__metadata__": {"up.stride": "2"}}, w + struct.pack("<f", 2)),
        "weight-norm-g-only": safetensors({"weight_g": weight_entry([1, 1, 1])},
                                          struct.pack("<f", 2)),
        "weight-norm-g-shape": safetensors(
            {"weight_v": weight_entry([1, 2, 3]), "weight_g": weight_entry([1, 2, 3], 24)},
            w + w),
        "weight-norm-zero-norm": safetensors(
            {"weight_v": weight_entry([1, 2, 3]), "weight_g": weight_entry([1, 1, 1], 24)},
            b"\0" * 24 + struct.pack("<f", 2)),
        "weight-norm-beside-weight": safetensors(
            {"weight": weight_entry([1, 2, 3]), "weight_v": weight_entry([1, 2, 3], 24),
             "weight_g": weight_entry([1, 1, 1], 48)}, w + w + struct.pack("<f", 2)),
        "metadata-unknown-key": safetensors(meta(strides="2", format="pt"), w + b),
    }
    for name, data in cases.items():
        with open(os.path.join(out, name + ".safetensors"), "wb") as f:
            f.write(data)


def npy(header, data=b"", version=(1, 0), raw_len=None):
    text = header.encode("latin-1") if isinstance(header, str) else header
    if version[0] == 1:
        prefix = b"\x93NUMPY" + bytes(version) + struct.pack(
            "<H", len(text) if raw_len is None else raw_len)
    else:
        prefix = b"\x93NUMPY" + bytes(version) + struct.pack(
            "<I", len(text) if raw_len is None else raw_len)
    return prefix + text + data


def npy_corpus():
    out = reset("corpus-npy")
    for name in ["len1_crop_1d.in", "crop_2d.in", "len1_3d.in", "f64_input_1d.in",
                 "override_1d.in", "crop_to_one_1d.out"]:
        shutil.copy(os.path.join(GOLDEN, name + ".npy"),
                    os.path.join(out, "valid-" + name.replace(".", "-") + ".npy"))
    f4 = struct.pack("<4f", 1, 2, 3, 4)

    def d(descr="'<f4'", order="False", shape="(2, 2)"):
        return "{'descr': %s, 'fortran_order': %s, 'shape': %s, }\n" % (descr, order, shape)

    cases = {
        "valid-v2": npy(d(), f4, (2, 0)),
        "valid-v3": npy(d(), f4, (3, 0)),
        "valid-f8": npy(d("'<f8'", shape="(2,)"), struct.pack("<2d", 1e300, -0.5)),
        "valid-scalar": npy(d(shape="()"), f4[:4]),
        "valid-empty": npy(d(shape="(0, 3)")),
        "valid-long-suffix": npy(d(shape="(2L, 2L)"), f4),
        "valid-native-order": npy(d("'=f4'"), f4),
        "valid-keys-reordered": npy("{'shape': (4,), 'descr': '<f4', "
                                    "'fortran_order': False}", f4),
        "empty": b"",
        "bad-magic": b"\x93NUMPZ\x01\x00" + b"\0" * 8,
        "magic-only": b"\x93NUMPY",
        "version-4": npy(d(), f4, (4, 0)),
        "version-1-1": npy(d(), f4, (1, 1)),
        "header-past-end": npy(d(), b"", raw_len=4000),
        "header-too-large": npy(d(), f4, (2, 0), raw_len=(1 << 20) + 1),
        "truncated-data": npy(d(), f4[:-1]),
        "trailing-data": npy(d(), f4 + b"\0"),
        "fortran": npy(d(order="True"), f4),
        "big-endian": npy(d("'>f4'"), f4),
        "int-dtype": npy(d("'<i4'"), f4),
        "structured": npy(d("[('a', '<f4')]"), f4),
        "missing-key": npy("{'descr': '<f4', 'shape': (4,), }", f4),
        "duplicate-key": npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
                             "'shape': (4,)}", f4),
        "unknown-key": npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), "
                           "'x': 1}", f4),
        "shape-not-tuple": npy(d(shape="(4)"), f4),
        "shape-negative": npy(d(shape="(-4,)"), f4),
        "shape-overflow": npy(d(shape="(4294967296, 4294967296, 4294967296)"), f4),
        "shape-huge-length": npy(d(shape="(99999999999999999999,)"), f4),
        "shape-33-dims": npy(d(shape="(" + "1, " * 33 + ")"), f4[:4]),
        "unterminated-string": npy("{'descr: '<f4', 'fortran_order': False}", f4),
        "text-after": npy(d() + "x", f4),
        "not-dict": npy("['descr']", f4),
        "backslash": npy("{'de\\scr': '<f4'}", f4),
    }
    for name, data in cases.items():
        with open(os.path.join(out, name + ".npy"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    model_corpus()
    npy_corpus()
