#!/usr/bin/env python3
"""Where a fused decode step's time goes, from the timeline one launch prints.

Build the CLI with the timeline compiled in and run a decode that passes the chosen position
(src/backends/cuda/kernels/fused_decode_timeline.cuh says what is stamped):

  cmake -S . -B build-tl -G Ninja -DCMAKE_BUILD_TYPE=Release -DMLXN_CUDA=ON \\
      -DCMAKE_CUDA_FLAGS=-DMLXN_FD_TIMELINE_POSITION=600
  cmake --build build-tl --target mlxn_cli
  build-tl/mlxn bench --synthetic llama3-8b --quant mlx4 --prompt 512 --gen 128 \\
      --repeat 1 --warmup 0 > timeline.txt
  tools/fused_decode_timeline.py timeline.txt [--layers 0,15,31]

For every layer it takes each phase from the moment the blocks pass its wait (the median block)
to the moment the last block finishes it, and the flag gaps between a phase's last block and the
next wait: their means over the layers are printed, then the phases of the layers asked for
(min / median / max over the blocks, in microseconds from the launch's first stamp), and when the
streaming warp had issued the last unit of each product.
"""
import argparse
import collections
import statistics
import sys

LAYER_EVENTS = 10  # kTlLayerEvents
MAX_LAYERS = 40    # kTlMaxLayers: later layers are not stamped
SLOTS = {"c": MAX_LAYERS * LAYER_EVENTS + 2, "s": MAX_LAYERS * 4 + 1}  # kTlCompute, kTlStream
EVENT_NAMES = ["start", "qkv done", "attention wait", "attention done", "o wait", "o done",
               "gate/up wait", "gate/up done", "down wait", "down done"]
PRODUCTS = ["qkv", "o", "gate/up", "down"]


def read(path):
    """{'c': {block: {slot: ns}}, 's': {...}} from the FDT lines (zero stamps: not reached)."""
    stamps = {"c": collections.defaultdict(dict), "s": collections.defaultdict(dict)}
    with open(path) as f:
        for line in f:
            if not line.startswith("FDT "):
                continue
            fields = line.split()
            kind, block, first = fields[1], int(fields[2]), int(fields[3])
            for e, v in enumerate(int(x) for x in fields[4:12]):
                if v and first + e < SLOTS[kind]:
                    stamps[kind][block][first + e] = v
    return stamps


def spread(table, slot, t0):
    """(min, median, max) over the blocks that stamped `slot`, in us from t0; None if none did."""
    xs = [(b[slot] - t0) / 1e3 for b in table.values() if slot in b]
    return (min(xs), statistics.median(xs), max(xs)) if xs else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("timeline", help="the mlxn output holding the FDT lines")
    ap.add_argument("--layers", default="0", help="comma-separated layers to show in full")
    args = ap.parse_args()
    st = read(args.timeline)
    comp, strm = st["c"], st["s"]
    if not comp:
        sys.exit(f"{args.timeline}: no 'FDT c' lines (was the position reached, the macro set?)")
    # Time zero: the launch's first stamp (the streaming lane's can precede the compute warps').
    t0 = min(min(b.values()) for table in (comp, strm) for b in table.values() if b)
    n_layers = max(s for b in comp.values() for s in b if s < MAX_LAYERS * LAYER_EVENTS) // \
        LAYER_EVENTS + 1
    # With MAX_LAYERS layers stamped the model may have more: the last stamped layer's tail (its
    # flag after down, and so its length) would run over the unstamped ones to the head's wait.
    truncated = n_layers == MAX_LAYERS
    if truncated:
        print(f"note: only the first {MAX_LAYERS} layers are stamped; layer {MAX_LAYERS - 1}'s "
              "flag after down and length are left out of the means")
    head_wait = spread(comp, MAX_LAYERS * LAYER_EVENTS, t0)
    head_done = spread(comp, MAX_LAYERS * LAYER_EVENTS + 1, t0)

    phases = collections.defaultdict(list)
    for l in range(n_layers):
        ev = [spread(comp, l * LAYER_EVENTS + e, t0) for e in range(LAYER_EVENTS)]
        if any(e is None for e in ev):
            sys.exit(f"layer {l}: missing stamps")
        nxt = spread(comp, (l + 1) * LAYER_EVENTS, t0) if l + 1 < n_layers else head_wait
        # A phase: from the median block passing its wait to the last block finishing it.
        phases["qkv"].append(ev[1][2] - ev[0][1])
        phases["flag after qkv"].append(ev[2][1] - ev[1][2])
        phases["attention (to the last merge)"].append(ev[3][2] - ev[2][1])
        phases["  of which the median item"].append(ev[3][1] - ev[2][1])
        phases["flag after the merges"].append(ev[4][1] - ev[3][2])
        phases["o"].append(ev[5][2] - ev[4][1])
        phases["flag after o"].append(ev[6][1] - ev[5][2])
        phases["gate/up"].append(ev[7][2] - ev[6][1])
        phases["flag after gate/up"].append(ev[8][1] - ev[7][2])
        phases["down"].append(ev[9][2] - ev[8][1])
        if not (truncated and l == n_layers - 1):
            phases["flag after down"].append(nxt[1] - ev[9][2])
            phases["layer"].append(nxt[1] - ev[0][1])
    print(f"{len(comp)} blocks, {n_layers} layers, launch span "
          f"{(max(max(b.values()) for b in comp.values()) - t0) / 1e3:.1f} us")
    print("mean over the layers (us):")
    for name, v in phases.items():
        print(f"  {name:32s} {statistics.mean(v):7.2f}")
    if head_wait and head_done:
        print(f"  {'head (wait to the last block)':32s} {head_done[2] - head_wait[1]:7.2f}")
    for l in (int(x) for x in args.layers.split(",") if x):
        print(f"layer {l} (us from the launch's first stamp: min / median / max over blocks):")
        for e, name in enumerate(EVENT_NAMES):
            s = spread(comp, l * LAYER_EVENTS + e, t0)
            if s:
                print(f"  {name:16s} {s[0]:9.2f} {s[1]:9.2f} {s[2]:9.2f}")
        for k, name in enumerate(PRODUCTS):
            s = spread(strm, 4 * l + k, t0)
            if s:
                print(f"  stream issued the last unit of {name:8s} "
                      f"{s[0]:9.2f} {s[1]:9.2f} {s[2]:9.2f}")


if __name__ == "__main__":
    main()
