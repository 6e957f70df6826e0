#!/usr/bin/python3
"""Time the benchmark cases (docs/performance.md, bench-cases.md) in PyTorch.

Each case is the layer of tools/bench.c (K1..K8, float32, batch 1, random
input and weights, with bias), called on the whole input at once, the way a
user who picked PyTorch would run it, at its best:

  * torch.inference_mode() (no autograd bookkeeping);
  * warm-up calls first (oneDNN builds and caches its primitives, the
    allocator reaches its steady state), then the median of repeats;
  * 1 and 2 intra-op threads (torch.set_num_threads, and the same count for
    OpenBLAS's own threads), the faster one kept (out of the box: torch's
    default count only);
  * per process environment (set before Python starts, so each
    configuration runs in its own child process):
      out-of-box  the environment as it is (the system's BLAS, default
                  malloc) and torch's own default thread count;
      openblas    OpenBLAS (Debian's libopenblas0-pthread, choosing its own
                  kernel: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset) put in
                  front of the system BLAS with LD_LIBRARY_PATH (not measured
                  by default);
      openblas-thp  the same, and glibc malloc tuned so that the output and the im2col/col2im
                  scratch that torch allocates afresh on every call are not
                  page-faulted in again on every call:
                  GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (madvise(MADV_HUGEPAGE)
                  on malloc's memory: transparent huge pages for the process,
                  no root or sysfs change needed while THP is in `madvise`
                  mode), glibc.malloc.mmap_max=0 (large blocks come from the
                  heap, not from a fresh mmap each time) and a large
                  glibc.malloc.trim_threshold (freed memory is kept and
                  reused).
    torch.nn.functional.conv_transpose*d has no out= argument, so this is
    the only way to keep its buffers.

Prints JSON: [{"name", "engine": "pytorch", "ms", "threads", "config", ...}].
`--export-onnx DIR` instead writes each case's layer as DIR/NAME.onnx (for
bench_ort.mjs), its input as DIR/NAME.in.bin and samples of PyTorch's output
as DIR/NAME.check.json.
"""
import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time

# name, rank, cin, cout, groups, kernel, stride, padding, output_padding, shape
# Same definitions as tools/bench.c.
CASES = [
    ("K1_audio_fir2x", 1, 2, 2, 2, (64,), (2,), (31,), (0,), (480000,)),
    ("K3_audio_mid", 1, 64, 32, 1, (16,), (8,), (4,), (0,), (4096,)),
    ("K4_audio_hifigan", 1, 512, 256, 1, (16,), (8,), (4,), (0,), (1024,)),
    ("K5_video_sr2x_2d", 2, 3, 3, 1, (4, 4), (2, 2), (1, 1), (0, 0), (360, 640)),
    ("K6_video_sr2x_3d", 3, 3, 3, 1, (3, 4, 4), (1, 2, 2), (1, 1, 1), (0, 0, 0),
     (8, 360, 640)),
    ("K7_video_fsrcnn", 2, 56, 1, 1, (9, 9), (2, 2), (4, 4), (1, 1), (360, 640)),
    ("K8_video_interp_t2", 3, 3, 3, 1, (4, 1, 1), (2, 1, 1), (1, 0, 0), (0, 0, 0),
     (8, 720, 1280)),
]

TUNABLES = ("glibc.malloc.hugetlb=1:glibc.malloc.mmap_max=0:"
            "glibc.malloc.trim_threshold=0x7fffffffffffffff")


def case_info(case):
    """Output shape, FLOPs and bytes (input + output, float32) of a case."""
    name, rank, cin, cout, groups, k, s, p, op, shape = case
    out = tuple((n - 1) * st - 2 * pa + (kk - 1) + o + 1
                for n, kk, st, pa, o in zip(shape, k, s, p, op))
    n_in = cin
    for v in shape:
        n_in *= v
    n_out = cout
    for v in out:
        n_out *= v
    kprod = 1
    for v in k:
        kprod *= v
    flops = 2.0 * n_in * (cout // groups) * kprod
    return {"out_shape": out, "flops": flops, "bytes": 4 * (n_in + n_out),
            "n_in": n_in, "n_out": n_out}


def make_layer(torch, case, seed):
    name, rank, cin, cout, groups, k, s, p, op, shape = case
    mod = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d,
           3: torch.nn.ConvTranspose3d}[rank]
    torch.manual_seed(seed)
    layer = mod(cin, cout, k, stride=s, padding=p, output_padding=op, groups=groups)
    layer.eval()
    x = torch.rand((1, cin) + tuple(shape)) * 2 - 1
    return layer, x


def openblas_lib():
    """The loaded OpenBLAS, if torch's BLAS is OpenBLAS, else None."""
    for line in open("/proc/self/maps"):
        path = line.split()[-1] if len(line.split()) >= 6 else ""
        if "openblas" in os.path.basename(path):
            try:
                lib = ctypes.CDLL(path)
                lib.openblas_get_corename.restype = ctypes.c_char_p
                return lib, path
            except OSError:
                pass
    return None, None


def blas_path():
    for line in open("/proc/self/maps"):
        f = line.split()
        if len(f) >= 6 and ("blas" in os.path.basename(f[-1])):
            return os.path.realpath(f[-1])
    return None


def time_calls(fn, budget, max_reps=50):
    """Warm-up, then repeats until at least 5 (3 for calls over 0.5 s, 2 over
    2 s) and the time budget is spent; returns (median ms, repeats)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    if first < 0.5:
        fn()  # second warm-up: the allocator's steady state
    min_reps = 2 if first > 2 else 3 if first > 0.5 else 5
    times = []
    start = time.perf_counter()
    while len(times) < max_reps and (len(times) < min_reps or
                                     time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), len(times)


def probe(torch, threads):
    """This machine's own roofline, measured as bench-cases.md measured the
    floor's constants: a 2048^3 sgemm (through torch's BLAS) and a 256 MB
    copy (read plus write counted)."""
    torch.set_num_threads(threads)
    a = torch.rand(2048, 2048)
    c = torch.empty(2048, 2048)
    ms, _ = time_calls(lambda: torch.mm(a, a, out=c), 0.5)
    src = torch.rand(64 << 20)
    dst = torch.empty_like(src)
    copy_ms, _ = time_calls(lambda: dst.copy_(src), 0.5)
    return {"name": "_machine", "engine": "probe", "threads": threads,
            "sgemm_gflops": round(2 * 2048 ** 3 / (ms * 1e6), 1),
            "copy_gbs": round(2 * (256 << 20) / (copy_ms * 1e6), 1)}


def worker(args):
    import torch
    default_threads = torch.get_num_threads()
    ob, ob_path = openblas_lib()
    corename = ob.openblas_get_corename().decode() if ob else None
    fns = {1: torch.nn.functional.conv_transpose1d,
           2: torch.nn.functional.conv_transpose2d,
           3: torch.nn.functional.conv_transpose3d}
    results = []
    wanted = args.cases.split(",") if args.cases else None
    # Out of the box: torch's own thread count; otherwise each count asked for.
    threads = ([default_threads] if args.worker == "out-of-box" else
               [int(t) for t in args.threads.split(",")])
    for ci, case in enumerate(CASES):
        name = case[0]
        if wanted and name not in wanted:
            continue
        layer, x = make_layer(torch, case, ci + 7)
        _, rank, cin, cout, groups, k, s, p, op, shape = case
        w, b = layer.weight.detach(), layer.bias.detach()
        f = fns[rank]
        per = {}
        with torch.inference_mode():
            for t in threads:
                torch.set_num_threads(t)
                if ob:
                    ob.openblas_set_num_threads(t)
                ms, reps = time_calls(
                    lambda: f(x, w, b, stride=s, padding=p, output_padding=op,
                              groups=groups), args.budget)
                per[t] = (ms, reps)
                print(f"  pytorch {args.worker} {name} threads={t} {ms:.3f} ms "
                      f"({reps} reps)", file=sys.stderr, flush=True)
        best_t = min(per, key=lambda t: per[t][0])
        results.append({
            "name": name, "engine": "pytorch", "config": args.worker,
            "ms": round(per[best_t][0], 4), "threads": best_t,
            "repeats": per[best_t][1],
            "ms_by_threads": {str(t): round(v[0], 4) for t, v in per.items()},
            "torch": torch.__version__, "default_threads": default_threads,
            "blas": blas_path(), "openblas_core": corename,
            "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
        })
    if args.probe:
        if ob:
            ob.openblas_set_num_threads(max(threads))
        results.append(probe(torch, max(threads)))
    json.dump(results, sys.stdout)


def export_onnx(args):
    import torch
    os.makedirs(args.export_onnx, exist_ok=True)
    wanted = args.cases.split(",") if args.cases else None
    for ci, case in enumerate(CASES):
        name = case[0]
        if wanted and name not in wanted:
            continue
        layer, x = make_layer(torch, case, ci + 7)
        base = os.path.join(args.export_onnx, name)
        with torch.inference_mode():
            y = layer(x)
        torch.onnx.export(layer, x, base + ".onnx", input_names=["x"],
                          output_names=["y"], opset_version=17)
        x.numpy().astype("<f4").tofile(base + ".in.bin")
        flat = y.reshape(-1)
        n = flat.numel()
        idx = sorted(set([0, n - 1] + [(i * 7919) % n for i in range(997)]))
        json.dump({"in_dims": list(x.shape), "out_dims": list(y.shape),
                   "index": idx, "value": [float(flat[i]) for i in idx]},
                  open(base + ".check.json", "w"))
        print(f"  exported {name}", file=sys.stderr, flush=True)


def find_openblas(arg):
    """Directory holding OpenBLAS's libblas.so.3, or None."""
    for d in ([arg] if arg else []) + ["/usr/lib/x86_64-linux-gnu/openblas-pthread"]:
        if d and os.path.exists(os.path.join(d, "libblas.so.3")):
            return d
    return None


def driver(args):
    me = os.path.abspath(__file__)
    base = [sys.executable, me, "--threads", args.threads, "--budget", str(args.budget)]
    if args.cases:
        base += ["--cases", args.cases]
    results = []
    for config in args.configs.split(","):
        env = dict(os.environ)
        if config in ("openblas-thp", "openblas"):
            for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                      "OMP_NUM_THREADS"):
                env.pop(v, None)
            ob = find_openblas(args.openblas)
            if ob:
                env["LD_LIBRARY_PATH"] = ob + (":" + env["LD_LIBRARY_PATH"]
                                               if env.get("LD_LIBRARY_PATH") else "")
            else:
                print(f"bench_torch: no OpenBLAS found, {config} uses the system BLAS",
                      file=sys.stderr)
            if config == "openblas-thp":
                env["GLIBC_TUNABLES"] = TUNABLES
        elif config != "out-of-box":
            sys.exit(f"unknown config {config}")
        probe_arg = ["--probe"] if config == "openblas-thp" else []
        out = subprocess.run(base + ["--worker", config] + probe_arg, env=env, check=True,
                             stdout=subprocess.PIPE).stdout
        results += json.loads(out)
    text = json.dumps(results, indent=1)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", help="comma-separated case names (default: all)")
    ap.add_argument("--threads", default="1,2", help="thread counts to try (best kept)")
    ap.add_argument("--budget", type=float, default=1.5,
                    help="seconds of timed repeats per case and thread count")
    ap.add_argument("--configs", default="out-of-box,openblas-thp",
                    help="environments to measure: out-of-box, openblas (OpenBLAS, "
                    "default malloc), openblas-thp (OpenBLAS, malloc tuned)")
    ap.add_argument("--openblas", help="directory with OpenBLAS's libblas.so.3 "
                    "(default: Debian's openblas-pthread directory if installed)")
    ap.add_argument("--output", help="write the JSON here instead of stdout")
    ap.add_argument("--export-onnx", metavar="DIR", help="export the cases to ONNX")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.export_onnx:
        export_onnx(args)
    elif args.worker:
        worker(args)
    else:
        driver(args)


if __name__ == "__main__":
    main()
