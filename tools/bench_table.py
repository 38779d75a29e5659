#!/usr/bin/env python3
"""Turns a Google Benchmark JSON file (mlxn_bench --benchmark_out) into the markdown tables of
docs/perf.md: per benchmark the time per op call and the achieved rate next to the measured
ceiling of the card (H100 80GB HBM3: 3.04 TB/s streaming read, 3.01 TB/s copy, 795 TFLOP/s bf16).

Usage: tools/bench_table.py bench.json [--read-tbs 3.04] [--copy-tbs 3.01] [--tflops 795]
Standard library only, so it runs anywhere."""
import argparse
import json
import sys


def fmt_time(seconds):
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("json_file")
    ap.add_argument("--read-tbs", type=float, default=3.04)
    ap.add_argument("--copy-tbs", type=float, default=3.01)
    ap.add_argument("--tflops", type=float, default=795.0)
    args = ap.parse_args()
    with open(args.json_file, encoding="utf-8") as f:
        data = json.load(f)
    print("| benchmark | label | time / call | achieved | ceiling | ratio |")
    print("|---|---|---|---|---|---|")
    for b in data.get("benchmarks", []):
        if b.get("error_occurred") or b.get("run_type") == "aggregate":
            continue
        name = b["name"].replace("/real_time", "")
        label = b.get("label", "")
        unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b.get("time_unit", "ns")]
        iter_time = b["real_time"] * unit
        calls = None
        if "s/call" in b:
            per_call = b["s/call"]
        else:
            per_call = None
        achieved, ceiling = "", ""
        ratio = ""
        if "weight_bytes/s" in b:
            rate = b["weight_bytes/s"]
            achieved, ceiling = f"{rate / 1e9:.0f} GB/s", f"{args.read_tbs * 1e3:.0f} GB/s read"
            ratio = f"{rate / (args.read_tbs * 1e12):.0%}"
        elif "FLOP/s" in b:
            rate = b["FLOP/s"]
            achieved, ceiling = f"{rate / 1e12:.1f} TFLOP/s", f"{args.tflops:.0f} TFLOP/s"
            ratio = f"{rate / (args.tflops * 1e12):.0%}"
        else:
            for key in ("bytes/s", "bytes", "GB/s"):
                if key in b:
                    rate = b[key]
                    achieved = f"{rate / 1e9:.1f} GB/s"
                    ceiling = f"{args.copy_tbs * 1e3:.0f} GB/s copy"
                    ratio = f"{rate / (args.copy_tbs * 1e12):.0%}"
                    break
        time_col = fmt_time(per_call) if per_call else fmt_time(iter_time) + " / iter"
        if "cpu" in label.split():
            ceiling, ratio = "", ""  # the ceilings are the GPU's
        print(f"| {name} | {label} | {time_col} | {achieved} | {ceiling} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
