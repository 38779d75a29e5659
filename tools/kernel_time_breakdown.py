#!/usr/bin/env python3
"""Where a decode step's GPU time goes, from an Nsight Compute CSV.

Run the engine under ncu with only the duration metric, e.g.

  ncu --csv --metrics gpu__time_duration.sum build/mlxn bench --synthetic llama3-8b \
      --quant mlx4 --prompt 16 --gen 4 --repeat 1 --warmup 0 > ncu.csv
  tools/kernel_time_breakdown.py ncu.csv

ncu replays every kernel alone, so the durations exclude launch gaps: the sum over a step is the
step's time with no gaps at all. Steps are split at each launch whose name matches --step-end
(the kernel that picks the token ends a decode step); the last complete step is reported, kernels
grouped by name, next to the step's total.
"""
import argparse
import csv
import re
import sys
from collections import OrderedDict


def read_launches(path):
    """(kernel name, grid, duration in µs) per launch, in launch order."""
    launches = OrderedDict()
    with open(path, newline="") as f:
        lines = [line for line in f if line.startswith('"')]  # ncu's own log lines are unquoted
    for row in csv.DictReader(lines):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        value = float(row["Metric Value"].replace(",", ""))
        unit = row.get("Metric Unit", "nsecond")
        scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3,
                 "ms": 1e3, "second": 1e6, "s": 1e6}.get(unit)
        if scale is None:
            sys.exit(f"{path}: unknown duration unit '{unit}'")
        launches[row["ID"]] = (row["Kernel Name"], row.get("Grid Size", ""), value * scale)
    return list(launches.values())


def short_name(name):
    """The function name without namespaces, return type and template arguments' noise."""
    name = re.sub(r"\(.*$", "", name)
    # ncu writes an anonymous namespace as "<unnamed>" (the CSV may keep only "unnamed>"); it
    # would otherwise read as a template argument list.
    name = re.sub(r"<?unnamed>::", "", name)
    name = re.sub(r"^void ", "", name)
    depth, out = 0, []
    for ch in name:
        if ch == "<":
            depth += 1
            if depth == 1:
                out.append("<")
            continue
        if ch == ">":
            depth -= 1
            if depth == 0:
                out.append(">")
            continue
        if depth == 0:
            out.append(ch)
    base = "".join(out).split("::")[-1].replace("<>", "")
    args = re.search(r"<(.*)>", name)
    return base + (f"<{args.group(1)}>" if args and len(args.group(1)) < 60 else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--step-end", default="argmax", help="regex of the kernel that ends a step")
    ap.add_argument("--wall-us", type=float, help="measured wall time of a step, for the gap line")
    a = ap.parse_args()
    launches = read_launches(a.csv)
    if not launches:
        sys.exit(f"{a.csv}: no gpu__time_duration.sum rows (was ncu run with --csv --metrics?)")
    ends = [i for i, (n, _, _) in enumerate(launches) if re.search(a.step_end, n)]
    if len(ends) < 2:
        sys.exit(f"{a.csv}: fewer than two launches match --step-end '{a.step_end}'")
    step = launches[ends[-2] + 1 : ends[-1] + 1]
    total = sum(d for _, _, d in step)
    groups = OrderedDict()
    for name, grid, d in step:
        key = short_name(name)
        g = groups.setdefault(key, [0, 0.0, set()])
        g[0] += 1
        g[1] += d
        g[2].add(grid)
    print(f"last complete step: {len(step)} launches, {total:.1f} µs of kernel time")
    if a.wall_us:
        print(f"wall {a.wall_us:.1f} µs a step: {a.wall_us - total:.1f} µs "
              f"({100 * (a.wall_us - total) / a.wall_us:.1f}%) between kernels")
    print(f"| kernel | launches | µs | share | µs each |")
    print(f"|---|---:|---:|---:|---:|")
    for key, (count, d, _) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
        print(f"| {key} | {count} | {d:.1f} | {100 * d / total:.1f}% | {d / count:.2f} |")


if __name__ == "__main__":
    main()
