#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora: small valid files from tests/golden and
malformed variants, one fault each, so libFuzzer starts from every branch of
the loaders (safetensors, ONNX, .npy). Standard library only; run from anywhere:
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


# ---- ONNX: protobuf written by hand (field numbers of onnx.proto) ----------

def pb_varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def pb_key(field, wire):
    return pb_varint(field << 3 | wire)


def pb_int(field, v):
    return pb_key(field, 0) + pb_varint(v)


def pb_bytes(field, data):
    return pb_key(field, 2) + pb_varint(len(data)) + data


def pb_str(field, s):
    return pb_bytes(field, s.encode("utf-8"))


def pb_packed(field, values):
    return pb_bytes(field, b"".join(pb_varint(v) for v in values))


def onnx_tensor(name, dims, values, dtype=1):
    fmt = {1: "<%df", 7: "<%dq"}[dtype]
    t = (pb_packed(1, dims) if dims else b"") + pb_int(2, dtype)
    if name:
        t += pb_str(8, name)
    return t + pb_bytes(9, struct.pack(fmt % len(values), *values))


def onnx_attr(name, kind, value):
    a = pb_str(1, name)
    if kind == "i":
        return a + pb_int(20, 2) + pb_int(3, value)
    if kind == "f":
        return a + pb_int(20, 1) + pb_key(2, 5) + struct.pack("<f", value)
    if kind == "s":
        return a + pb_int(20, 3) + pb_str(4, value)
    if kind == "ints":
        return a + pb_int(20, 7) + pb_packed(8, value)
    return a + pb_int(20, 4) + pb_bytes(5, value)  # a tensor


def onnx_node(op, name, inputs, outputs, attrs=()):
    n = b"".join(pb_str(1, i) for i in inputs) + b"".join(pb_str(2, o) for o in outputs)
    n += pb_str(3, name) + pb_str(4, op)
    return n + b"".join(pb_bytes(5, a) for a in attrs)


def onnx_value(name, dims, elem=1):
    shape = b"".join(pb_bytes(1, pb_int(1, d) if isinstance(d, int) else pb_str(2, d))
                     for d in dims)
    return pb_str(1, name) + pb_bytes(2, pb_bytes(1, pb_int(1, elem) + pb_bytes(2, shape)))


def onnx_graph(nodes, inits, inputs, outputs):
    return (b"".join(pb_bytes(1, n) for n in nodes) + pb_str(2, "g") +
            b"".join(pb_bytes(5, t) for t in inits) +
            b"".join(pb_bytes(11, v) for v in inputs) +
            b"".join(pb_bytes(12, v) for v in outputs))


def onnx_model(graph, opset=13, ir=8):
    return (pb_int(1, ir) + pb_str(2, "ct-corpus") + pb_bytes(7, graph) +
            pb_bytes(8, pb_str(1, "") + pb_int(2, opset)))


def onnx_corpus():
    out = reset("corpus-onnx")
    nets = os.path.join(GOLDEN, "networks")
    # The golden exports (the small ones: the fuzzer's inputs stay short).
    for folder, prefix in [(nets, "golden-"), (os.path.join(nets, "refusals"), "refusal-")]:
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if name.endswith(".onnx") and os.path.getsize(path) <= 16384:
                shutil.copy(path, os.path.join(out, prefix + name))

    x = lambda c=2, r=1: onnx_value("x", [1, c] + ["len"] * r)
    z = lambda c=3, r=1: onnx_value("z", [1, c] + ["len"] * r)
    w = onnx_tensor("w", [3, 2, 3], [0.25 * (i % 5) - 0.5 for i in range(18)])
    b = onnx_tensor("b", [3], [0.1, -0.2, 0.3])
    conv = onnx_node("Conv", "conv", ["x", "w", "b"], ["y"],
                     [onnx_attr("kernel_shape", "ints", [3]), onnx_attr("pads", "ints", [1, 1])])
    relu = onnx_node("Relu", "relu", ["y"], ["z"])
    small = onnx_graph([conv, relu], [w, b], [x()], [z()])

    def const(name, dims, values, dtype=7):
        return onnx_node("Constant", name, [], [name],
                         [onnx_attr("value", "t", onnx_tensor(None, dims, values, dtype))])

    # torch's Pad at opset >= 11: the pads from a Constant-only subgraph.
    pad_nodes = [
        const("n4", [1], [4]), const("given", [2], [2, 1]),
        onnx_node("ConstantOfShape", "zeros", ["n4"], ["zeros"],
                  [onnx_attr("value", "t", onnx_tensor(None, [1], [0], 7))]),
        onnx_node("Concat", "cat", ["given", "zeros"], ["all"], [onnx_attr("axis", "i", 0)]),
        const("pairs_shape", [2], [-1, 2]),
        onnx_node("Reshape", "rs", ["all", "pairs_shape"], ["pairs"]),
        const("m1", [1], [-1]), const("big", [1], [-(2**63) + 1]), const("ax0", [1], [0]),
        onnx_node("Slice", "rev", ["pairs", "m1", "big", "ax0", "m1"], ["rev"]),
        onnx_node("Transpose", "tr", ["rev"], ["tr"], [onnx_attr("perm", "ints", [1, 0])]),
        onnx_node("Reshape", "flat", ["tr", "m1"], ["flat"]),
        onnx_node("Cast", "cast", ["flat"], ["pads"], [onnx_attr("to", "i", 7)]),
        const("v", [], [0.5], 1),
        onnx_node("Pad", "pad", ["x", "pads", "v"], ["z"], [onnx_attr("mode", "s", "constant")]),
    ]
    wn_nodes = [
        onnx_node("ReduceL2", "norm", ["v"], ["n"],
                  [onnx_attr("axes", "ints", [1, 2]), onnx_attr("keepdims", "i", 1)]),
        onnx_node("Div", "div", ["v", "n"], ["vn"]),
        onnx_node("Mul", "mul", ["vn", "g"], ["w"]),
        onnx_node("Conv", "conv", ["x", "w"], ["z"]),
    ]
    wn_inits = [onnx_tensor("v", [3, 2, 2], [0.1 * i - 0.5 for i in range(12)]),
                onnx_tensor("g", [3, 1, 1], [2, 3, 4])]
    bn_inits = [onnx_tensor(n, [2], v) for n, v in
                [("s", [2, 0.5]), ("o", [1, -1]), ("m", [0.5, -2]), ("va", [3, 0.25])]]
    nested = b""
    for _ in range(70):
        nested = pb_bytes(1, pb_str(4, "If") + pb_bytes(5, pb_str(1, "then_branch") +
                                                        pb_bytes(6, nested)))
    cases = {
        "valid-conv-relu": onnx_model(small),
        "valid-opset9": onnx_model(small, 9),
        "valid-pad-subgraph": onnx_model(onnx_graph(pad_nodes, [], [x()], [z(2)])),
        "valid-pad-opset9": onnx_model(onnx_graph(
            [onnx_node("Pad", "pad", ["x"], ["z"], [onnx_attr("pads", "ints", [0, 1, 2, 0, 1, 1]),
                                                   onnx_attr("value", "f", -0.5)])],
            [], [x()], [z(4)]), 9),
        "valid-weight-norm": onnx_model(onnx_graph(wn_nodes, wn_inits, [x()], [z()])),
        "valid-batch-norm": onnx_model(onnx_graph(
            [onnx_node("Relu", "r", ["x"], ["r"]),
             onnx_node("BatchNormalization", "bn", ["r", "s", "o", "m", "va"], ["z"],
                       [onnx_attr("epsilon", "f", 1e-3)])], bn_inits, [x()], [z(2)])),
        "valid-split-concat": onnx_model(onnx_graph(
            [onnx_node("Split", "s", ["x", "parts"], ["a", "b"], [onnx_attr("axis", "i", 1)]),
             onnx_node("Concat", "c", ["b", "a", "b"], ["z"], [onnx_attr("axis", "i", -2)])],
            [onnx_tensor("parts", [2], [2, 4], 7)], [x(6)], [z(10)])),
        "valid-depth-to-space": onnx_model(onnx_graph(
            [onnx_node("DepthToSpace", "d", ["x"], ["z"],
                       [onnx_attr("blocksize", "i", 2), onnx_attr("mode", "s", "CRD")])],
            [], [x(8, 2)], [z(2, 2)])),
        "valid-max-chain-clip": onnx_model(onnx_graph(
            [onnx_node("Neg", "n", ["x"], ["n"]), onnx_node("Max", "max", ["x", "n", "k"], ["m"]),
             onnx_node("Clip", "clip", ["m", "k", ""], ["z"])],
            [onnx_tensor("k", [], [0.25])], [x()], [z(2)])),
        "valid-pools-3d": onnx_model(onnx_graph(
            [onnx_node("MaxPool", "p", ["x"], ["p"],
                       [onnx_attr("kernel_shape", "ints", [2, 2, 2]),
                        onnx_attr("strides", "ints", [2, 2, 2]), onnx_attr("ceil_mode", "i", 1)]),
             onnx_node("AveragePool", "a", ["p"], ["z"],
                       [onnx_attr("kernel_shape", "ints", [3, 3, 3]),
                        onnx_attr("pads", "ints", [1, 1, 1, 1, 1, 1]),
                        onnx_attr("count_include_pad", "i", 1)])],
            [], [x(2, 3)], [z(2, 3)])),
        "truncated-half": onnx_model(small)[: len(onnx_model(small)) // 2],
        "truncated-tag": onnx_model(small)[:1],
        "wire-type-input-varint": onnx_model(small + pb_bytes(1, pb_int(1, 7) + pb_str(4, "Relu"))),
        "wire-type-group": onnx_model(small) + pb_key(30, 3),
        "length-past-end": onnx_model(small) + pb_key(7, 2) + pb_varint(1000),
        "nested-70": pb_int(1, 8) + pb_bytes(7, nested),
        "cycle": onnx_model(onnx_graph(
            [onnx_node("Relu", "a", ["b_out"], ["a_out"]), onnx_node("Relu", "b", ["a_out"], ["b_out"]),
             onnx_node("Add", "c", ["x", "a_out"], ["z"])], [], [x()], [z(2)])),
        "missing-input": onnx_model(onnx_graph(
            [onnx_node("Relu", "r", ["ghost"], ["z"])], [], [x()], [z(2)])),
        "duplicate-output": onnx_model(onnx_graph(
            [conv, relu, onnx_node("Relu", "again", ["x"], ["y"])], [w, b], [x()], [z()])),
        "raw-size-mismatch": onnx_model(onnx_graph(
            [conv, relu], [w[:-4], b], [x()], [z()])),
        "dims-overflow": onnx_model(onnx_graph(
            [conv, relu], [w, b, pb_packed(1, [2**40, 2**40]) + pb_int(2, 1) + pb_str(8, "h")],
            [x()], [z()])),
        "huge-count": onnx_model(onnx_graph(
            [conv, relu], [w, b, pb_packed(1, [10**6, 10**6]) + pb_int(2, 1) + pb_str(8, "h")],
            [x()], [z()])),
        "external-escape": onnx_model(onnx_graph(
            [onnx_node("Conv", "conv", ["x", "w"], ["z"])],
            [pb_packed(1, [3, 2, 3]) + pb_int(2, 1) + pb_str(8, "w") +
             pb_bytes(13, pb_str(1, "location") + pb_str(2, "../w.bin")) + pb_int(14, 1)],
            [x()], [z()])),
        "two-inputs": onnx_model(onnx_graph([conv, relu], [w, b], [x(), onnx_value("x2", [1, 2, 8])],
                                            [z()])),
        "int64-input": onnx_model(onnx_graph([relu], [], [onnx_value("y", [1, 3, "l"], 7)], [z()])),
        "rank2-input": onnx_model(onnx_graph([relu], [], [onnx_value("y", [3, "l"])], [z()])),
        "opset8": onnx_model(small, 8),
        "unknown-op": onnx_model(onnx_graph([onnx_node("Frobnicate", "f", ["x"], ["z"])], [],
                                            [x()], [z(2)])),
        "unknown-attribute": onnx_model(onnx_graph(
            [onnx_node("Relu", "r", ["x"], ["z"], [onnx_attr("alpha", "f", 0.5)])], [],
            [x()], [z(2)])),
        "shape-of-input": onnx_model(onnx_graph(
            [onnx_node("Shape", "sh", ["x"], ["s"]), onnx_node("Pad", "pad", ["x", "s"], ["z"])],
            [], [x()], [z(2)])),
    }
    for name, data in cases.items():
        with open(os.path.join(out, name + ".onnx"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    model_corpus()
    onnx_corpus()
    npy_corpus()
