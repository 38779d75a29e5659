#!/usr/bin/env python3
"""Merges `mlxn bench --json` objects and `tools/torch_decode_bench.py --json` lines into one
markdown table (issue 7's side-by-side), as scripts/side_by_side.sh uses it:

    tools/side_by_side_table.py --gpu "NVIDIA H100 80GB HBM3" mlxn_mlx4.json ... torch.jsonl

Every file holds JSON objects, one a line. "% of bandwidth limit" is recomputed for every row
from its decode tok/s and weight bytes read per token against one --bandwidth-tbs, so both
engines' rows use the same ceiling. Standard library only."""
import argparse
import json
import sys

# mlxn's synthetic storages (engine/synthetic_model.cpp): every projection and the lm head are
# stored this way; MLX's 4/8-bit use groups of 64 along the input dimension.
MLXN_STORAGE = {
    "mlx4": "MLX affine 4-bit g64",
    "mlx8": "MLX affine 8-bit g64",
    "q4_0": "GGUF Q4_0",
    "bf16": "bf16",
}


class InputError(Exception):
    pass


def read_objects(path):
    """(path, line number, object) for every non-blank line of a file."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e}") from e
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{number}: not a JSON object: {e}") from e
        if not isinstance(obj, dict):
            raise InputError(f"{path}:{number}: expected a JSON object")
        out.append((path, number, obj))
    return out


def mlxn_row(obj):
    quant = obj.get("quant") or obj.get("storage", "?")
    mode = "pipelined" if obj.get("pipelined_decode", True) else "sync decode"
    return {
        "engine": "mlxn",
        "variant": f"{quant}, {mode}",
        "storage": MLXN_STORAGE.get(quant, obj.get("storage", quant)),
        "device": obj.get("device"),
        "decode_tok_s": obj.get("decode_tok_s"),
        "weight_bytes_per_token": obj.get("weight_bytes_per_token"),
        "prefill_tok_s": obj.get("prefill_tok_s"),
        "notes": f"TTFT {obj['ttft_ms']:.1f} ms" if obj.get("ttft_ms") is not None else "",
    }


def torch_row(obj):
    notes = obj.get("notes") or ""
    if obj.get("fused_projections"):
        notes = "; ".join(filter(None, ["fused q|k|v and gate|up", notes]))
    if obj.get("skipped"):
        notes = "skipped: " + obj["skipped"]
    if obj.get("error"):
        notes = "ERROR: " + obj["error"]
    return {
        "engine": "torch " + str(obj.get("torch_version", "")).split("+")[0],
        "variant": obj.get("variant", "?"),
        "storage": obj.get("storage", ""),
        "device": obj.get("device"),
        "decode_tok_s": obj.get("decode_tok_s"),
        "weight_bytes_per_token": obj.get("weight_bytes_per_token"),
        "prefill_tok_s": obj.get("prefill_tok_s"),
        "notes": notes,
    }


def to_row(path, number, obj):
    """Tells the two producers apart by their fields."""
    if obj.get("engine") == "torch":
        return torch_row(obj)
    if "backend" in obj and "decode_tok_s" in obj:
        return mlxn_row(obj)
    raise InputError(f"{path}:{number}: neither an mlxn bench nor a torch_decode_bench object")


def cell(value, spec):
    return "" if value is None else format(value, spec)


def bandwidth_percent(row, tbs):
    tok_s, per_token = row["decode_tok_s"], row["weight_bytes_per_token"]
    if tok_s is None or per_token is None:
        return None
    return 100.0 * tok_s * per_token / (tbs * 1e12)


def render(rows, gpu, tbs, heading):
    lines = []
    if gpu:
        lines.append(f"GPU: {gpu}")
    lines.extend(heading)
    lines.append("")
    lines.append(f"| engine | variant | storage | weights read / token | decode tok/s "
                 f"| % of bandwidth limit ({tbs:g} TB/s) | prefill tok/s | notes |")
    lines.append("|---|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        per_token = r["weight_bytes_per_token"]
        read = "" if per_token is None else f"{per_token / 1e9:.2f} GB"
        lines.append(
            f"| {r['engine']} | {r['variant']} | {r['storage']} | {read} "
            f"| {cell(r['decode_tok_s'], '.1f')} | {cell(bandwidth_percent(r, tbs), '.1f')} "
            f"| {cell(r['prefill_tok_s'], ',.0f')} | {r['notes']} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", help="files of JSON objects, one a line")
    ap.add_argument("--gpu", default="", help="printed above the table (e.g. from nvidia-smi)")
    ap.add_argument("--bandwidth-tbs", type=float, default=3.0,
                    help="bandwidth limit the decode rates are compared with (default 3.0)")
    ap.add_argument("--heading", action="append", default=[],
                    help="a line printed above the table (repeatable)")
    args = ap.parse_args(argv)
    try:
        rows = [to_row(*item) for path in args.files for item in read_objects(path)]
    except InputError as e:
        print(f"side_by_side_table: {e}", file=sys.stderr)
        return 1
    if not rows:
        print("side_by_side_table: no rows in " + ", ".join(args.files), file=sys.stderr)
        return 1
    print(render(rows, args.gpu, args.bandwidth_tbs, args.heading))
    return 0


if __name__ == "__main__":
    sys.exit(main())
