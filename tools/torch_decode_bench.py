#!/usr/bin/env python3
"""PyTorch's side of the issue-7 comparison: batch-1 greedy decode of a Llama-3-8B-shaped model
with random weights, written in plain torch (no transformers model classes, no Triton kernels of
our own), in the ways PyTorch users run it:

  eager-bf16    one Python call per op, every kernel launched from the host
  graph-bf16    the whole decode step captured once in a torch.cuda.CUDAGraph and replayed
  compile-bf16  torch.compile (Inductor's fused Triton kernels), replayed in a CUDA graph
                (needs Triton; a "skipped" row says so where it is missing)
  int4-graph    weight-only int4 through tinygemm (aten._weight_int4pack_mm), graph-replayed

Each run prefills --prompt seeded random ids in one forward call, then decodes --gen tokens
greedily, the argmax fed back on the device. --warmup untimed runs, then --repeats timed ones;
the median is reported. "% of bandwidth limit" = weight bytes read per token (the 7 projections
of every layer + the lm head + one embedding row, at their storage size with scales, as
`mlxn bench` counts them) x tok/s / --bandwidth-tbs. KV-cache reads are not counted.

    python3 tools/torch_decode_bench.py                    # markdown table, all variants
    python3 tools/torch_decode_bench.py --json             # one JSON object a line
    python3 tools/torch_decode_bench.py --shape tiny --device cpu --variants eager-bf16

scripts/side_by_side.sh runs this next to `mlxn bench` and prints one table.
"""

import argparse
import gc
import importlib
import json
import statistics
import sys
import time
from dataclasses import dataclass, replace
from typing import Callable, List, Optional

import torch
import torch.nn.functional as F

VARIANTS = ("eager-bf16", "graph-bf16", "compile-bf16", "int4-graph")
BF16_VARIANTS = ("eager-bf16", "graph-bf16", "compile-bf16")


@dataclass(frozen=True)
class Shape:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    rope_theta: float
    rms_eps: float


SHAPES = {
    # Meta-Llama-3-8B's config.json (rope scaling left out: it changes no kernel's cost).
    "llama3-8b": Shape(4096, 32, 32, 8, 128, 14336, 128256, 500000.0, 1e-5),
    # For smoke tests; its sizes still meet tinygemm's rules (k a multiple of 128, n of 8).
    "tiny": Shape(256, 2, 4, 2, 64, 512, 1024, 10000.0, 1e-5),
}


def log(msg: str) -> None:
    """Progress goes to stderr so that stdout holds only the table or the JSON lines."""
    print(f"torch_decode_bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Linear layers: y = x @ W^T for x: [n, in] bf16 (always 2-D, as tinygemm wants).


class DenseLinear:
    """bf16 weight [out, in] through cuBLAS (F.linear)."""

    def __init__(self, weight: torch.Tensor):
        self.weight = weight

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)

    @property
    def nbytes(self) -> int:
        return self.weight.numel() * self.weight.element_size()


class Int4Linear:
    """tinygemm int4: packed [out/8, in/(tiles*16), 32, tiles/2] int32 codes and
    scales_and_zeros [in/group, out, 2] bf16; the kernel computes w = (q - 8) * scale + zero."""

    def __init__(self, packed: torch.Tensor, scales_and_zeros: torch.Tensor, group: int):
        self.packed = packed
        self.scales_and_zeros = scales_and_zeros
        self.group = group

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten._weight_int4pack_mm(
            x.contiguous(), self.packed, self.group, self.scales_and_zeros)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.packed, self.scales_and_zeros))


def quantize_affine_int4(w: torch.Tensor, group: int):
    """w: [n, k] -> codes uint8 [n, k] in 0..15, scales and zeros [n, k/group] bf16 such that
    w ~ (codes - 8) * scale + zero. tinygemm keeps the zero point as a float added after the
    scaling (one fma per weight), so each group's min maps to code 0 and its max to 15."""
    n, k = w.shape
    wg = w.float().view(n, k // group, group)
    lo, hi = wg.amin(dim=-1), wg.amax(dim=-1)
    scales = ((hi - lo).clamp(min=1e-6) / 15.0).to(torch.bfloat16)
    zeros = (lo + 8.0 * scales.float()).to(torch.bfloat16)
    # Codes come from the bf16-rounded scale and zero, the values the kernel will use.
    s, z = scales.float().unsqueeze(-1), zeros.float().unsqueeze(-1)
    codes = torch.round((wg - z) / s + 8.0).clamp_(0, 15).to(torch.uint8).view(n, k)
    return codes, scales, zeros


def pack_int4(codes: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor, group: int,
              inner_k_tiles: int) -> Int4Linear:
    """Packs codes for tinygemm. Since torch 2.5 the CUDA packer takes uint8 [n, k/2] with the
    even-k code in the high nibble (torch 2.4 took int32 [n, k]: tried if the first fails)."""
    pairs = ((codes[:, 0::2] << 4) | codes[:, 1::2]).contiguous()
    try:
        packed = torch.ops.aten._convert_weight_to_int4pack(pairs, inner_k_tiles)
    except RuntimeError:
        packed = torch.ops.aten._convert_weight_to_int4pack(codes.to(torch.int32), inner_k_tiles)
    # [n, k/group, 2] -> [k/group, n, 2]: a group's scale and zero sit together (one 32-bit load).
    scales_and_zeros = torch.stack([scales, zeros], dim=-1).transpose(0, 1).contiguous()
    return Int4Linear(packed, scales_and_zeros, group)


def int4_kernel_error(linear: Int4Linear, codes, scales, zeros, group: int) -> float:
    """Relative error of the tinygemm product against x @ dequant(W)^T in float32, for 1 and 8
    rows: ~1e-3 when packing and zero-point convention match the kernel, ~1 when they don't."""
    n, k = codes.shape
    deq = (codes.float().view(n, k // group, group) - 8.0) * scales.float().unsqueeze(-1)
    deq = (deq + zeros.float().unsqueeze(-1)).view(n, k)
    x = torch.randn(8, k, device=codes.device).to(torch.bfloat16)
    ref = x.float() @ deq.t()
    worst = 0.0
    for m in (1, 8):
        got = linear(x[:m]).float()
        worst = max(worst, ((got - ref[:m]).norm() / ref[:m].norm()).item())
    return worst


class Int4Maker:
    """Turns each bf16 weight into an Int4Linear as it is drawn (so only one bf16 matrix is
    alive at a time) and checks the first one against a float32 reference."""

    def __init__(self, group: int, inner_k_tiles: int):
        self.group, self.inner_k_tiles = group, inner_k_tiles
        self.check_error: Optional[float] = None

    def __call__(self, w: torch.Tensor) -> Int4Linear:
        codes, scales, zeros = quantize_affine_int4(w, self.group)
        linear = pack_int4(codes, scales, zeros, self.group, self.inner_k_tiles)
        if self.check_error is None:
            self.check_error = int4_kernel_error(linear, codes, scales, zeros, self.group)
        return linear


# ---------------------------------------------------------------------------------------------
# The model.


class WeightSource:
    """Draws every random tensor in one fixed order from one seeded generator, so the bf16 and
    the int4 builds see the same weights (normal, std 0.02)."""

    def __init__(self, seed: int, device: torch.device):
        self.device = device
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def matrix(self, rows: int, cols: int) -> torch.Tensor:
        w = torch.randn(rows, cols, generator=self.generator, device=self.device,
                        dtype=torch.bfloat16)
        return w.mul_(0.02)

    def ones(self, n: int) -> torch.Tensor:
        return torch.ones(n, device=self.device, dtype=torch.bfloat16)


@dataclass
class Layer:
    """qkv holds [q, k, v] (3 linears) or their rows stacked in one (--fuse); gate_up likewise."""
    attn_norm: torch.Tensor
    qkv: List[Callable]
    o: Callable
    mlp_norm: torch.Tensor
    gate_up: List[Callable]
    down: Callable

    def projections(self):
        return [*self.qkv, self.o, *self.gate_up, self.down]


def build_layer(shape: Shape, source: WeightSource, make_linear, fuse: bool) -> Layer:
    """The same random matrices either way: --fuse only stacks their rows, so quantization (by
    groups along each row) and the bytes read are unchanged; only the launches differ."""
    h, q_out, kv_out = shape.hidden, shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim

    def linears(matrices):
        return [make_linear(torch.cat(matrices))] if fuse else [make_linear(m) for m in matrices]

    attn_norm = source.ones(h)
    qkv = linears([source.matrix(q_out, h), source.matrix(kv_out, h), source.matrix(kv_out, h)])
    o = make_linear(source.matrix(h, q_out))
    mlp_norm = source.ones(h)
    gate_up = linears([source.matrix(shape.ffn, h), source.matrix(shape.ffn, h)])
    down = make_linear(source.matrix(h, shape.ffn))
    return Layer(attn_norm, qkv, o, mlp_norm, gate_up, down)


def project(linears: List[Callable], x: torch.Tensor, sizes: List[int]) -> List[torch.Tensor]:
    """Outputs of the separate projections, or column slices of the fused one."""
    if len(linears) == 1:
        return list(linears[0](x).split(sizes, dim=-1))
    return [linear(x) for linear in linears]


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + eps)
    return weight * xf.to(x.dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: [n, heads, head_dim]; cos, sin: [n, 1, head_dim/2]. Llama's split-halves rotation."""
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)


class Model:
    """Llama decoder over a static KV cache [layers, context, kv_heads, head_dim]. forward()
    takes tokens and positions as device tensors and returns the greedy next token on the
    device, so the decode step has static shapes and no host sync: it can be graph-captured."""

    def __init__(self, shape: Shape, source: WeightSource, make_linear, make_head, context: int,
                 fuse: bool = False):
        dev = source.device
        self.shape = shape
        self.embed = source.matrix(shape.vocab, shape.hidden)
        self.layers: List[Layer] = [build_layer(shape, source, make_linear, fuse)
                                    for _ in range(shape.layers)]
        self.final_norm = source.ones(shape.hidden)
        self.head = make_head(source.matrix(shape.vocab, shape.hidden))
        # Rounded up so the attention mask's rows stay aligned for the fused SDPA kernels; the
        # extra positions are masked out like every position past the current one.
        self.context = -(-context // 16) * 16
        cache_shape = (shape.layers, self.context, shape.kv_heads, shape.head_dim)
        self.cache_k = torch.zeros(cache_shape, device=dev, dtype=torch.bfloat16)
        self.cache_v = torch.zeros(cache_shape, device=dev, dtype=torch.bfloat16)
        self.positions = torch.arange(self.context, device=dev)
        inv_freq = 1.0 / (shape.rope_theta ** (
            torch.arange(0, shape.head_dim, 2, device=dev, dtype=torch.float32) / shape.head_dim))
        angles = torch.outer(self.positions.float(), inv_freq)
        self.cos, self.sin = angles.cos(), angles.sin()

    def weight_bytes_per_token(self) -> int:
        """What one decode step reads of the weights, counted as `mlxn bench` counts it."""
        total = self.head.nbytes + self.shape.hidden * self.embed.element_size()
        for layer in self.layers:
            total += sum(p.nbytes for p in layer.projections())
        return total

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """tokens, positions: [n] int64 on the device -> next token [1] int64."""
        eps = self.shape.rms_eps
        x = F.embedding(tokens, self.embed)
        for index, layer in enumerate(self.layers):
            x = x + self.attention(index, layer, rms_norm(x, layer.attn_norm, eps), positions)
            gate, up = project(layer.gate_up, rms_norm(x, layer.mlp_norm, eps),
                               [self.shape.ffn, self.shape.ffn])
            x = x + layer.down(F.silu(gate) * up)
        # Only the last position's logits are sampled, so only its row goes through the head.
        last = rms_norm(x[-1:], self.final_norm, eps)
        return self.head(last).argmax(dim=-1)

    def attention(self, index: int, layer: Layer, h: torch.Tensor,
                  positions: torch.Tensor) -> torch.Tensor:
        s = self.shape
        n, group = h.shape[0], s.heads // s.kv_heads
        cos = self.cos.index_select(0, positions).unsqueeze(1)
        sin = self.sin.index_select(0, positions).unsqueeze(1)
        q_out, kv_out = s.heads * s.head_dim, s.kv_heads * s.head_dim
        q, k, v = project(layer.qkv, h, [q_out, kv_out, kv_out])
        q = apply_rope(q.view(n, s.heads, s.head_dim), cos, sin)
        k = apply_rope(k.view(n, s.kv_heads, s.head_dim), cos, sin)
        v = v.view(n, s.kv_heads, s.head_dim)
        self.cache_k[index].index_copy_(0, positions, k)
        self.cache_v[index].index_copy_(0, positions, v)
        keys = self.cache_k[index].transpose(0, 1).unsqueeze(0)  # [1, kv_heads, context, d]
        values = self.cache_v[index].transpose(0, 1).unsqueeze(0)
        # GQA without copying the cache: the `group` query heads that share a KV head (heads
        # kv*group .. kv*group+group-1, as repeat_interleave would pair them) become extra query
        # rows of that KV head: [1, kv_heads, group * n, d], rows ordered (head in group, token).
        qg = q.view(n, s.kv_heads, group, s.head_dim).permute(1, 2, 0, 3)
        qg = qg.reshape(1, s.kv_heads, group * n, s.head_dim)
        # Row (g, t) may see cache positions <= positions[t]: causal within the prompt, and the
        # valid length during decode; the cache keeps its full static length.
        mask = self.positions.unsqueeze(0) <= positions.repeat(group).unsqueeze(1)
        out = F.scaled_dot_product_attention(qg, keys, values, attn_mask=mask[None, None])
        out = out.view(s.kv_heads, group, n, s.head_dim).permute(2, 0, 1, 3)
        return layer.o(out.reshape(n, s.heads * s.head_dim))


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------
# Decode steps: (token [1], position [1]) -> next token [1].


class GraphStep:
    """Captures `forward` once on static token/position tensors and replays it. The caller's
    token and position are copied in (device to device, no sync) before each replay."""

    def __init__(self, forward, device: torch.device):
        self.token = torch.zeros(1, dtype=torch.long, device=device)
        self.position = torch.zeros(1, dtype=torch.long, device=device)
        # Warm up on a side stream first, as CUDA graph capture requires: this is where cuBLAS
        # creates its workspaces, SDPA picks its kernel and torch.compile compiles/autotunes.
        # It writes cache row 0, which every run's prefill rewrites before it is read.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                forward(self.token, self.position)
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.next_token = forward(self.token, self.position)
        torch.cuda.synchronize()

    def __call__(self, token: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        self.token.copy_(token)
        self.position.copy_(position)
        self.graph.replay()
        return self.next_token


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class RunTimes:
    prefill_s: float
    decode_s: float
    tokens: List[int]


def timed_run(model: Model, step, prompt: torch.Tensor, gen: int) -> RunTimes:
    """Prefill (up to the first token, as mlxn's prefill time is) then gen - 1 decode steps,
    each fed the previous step's token on the device; one sync at each end."""
    device = prompt.device
    n_prompt = prompt.shape[0]
    tokens = torch.empty(gen, dtype=torch.long, device=device)
    synchronize(device)
    t0 = time.perf_counter()
    token = model.forward(prompt, model.positions[:n_prompt])
    synchronize(device)
    t1 = time.perf_counter()
    tokens[0:1].copy_(token)
    for i in range(1, gen):
        pos = n_prompt + i - 1  # the position of the token being fed in
        token = step(token, model.positions[pos:pos + 1])
        tokens[i:i + 1].copy_(token)
    synchronize(device)
    t2 = time.perf_counter()
    return RunTimes(t1 - t0, t2 - t1, tokens.tolist())


# ---------------------------------------------------------------------------------------------
# Rows of the report.


def base_row(args, variant: str, storage: str) -> dict:
    return {
        "engine": "torch", "variant": variant, "storage": storage, "device": args.device_name,
        "torch_version": torch.__version__, "shape": args.shape, "layers": args.layers,
        "fused_projections": args.fuse, "prompt_tokens": args.prompt, "gen_tokens": args.gen,
        "repeats": args.repeats,
        "decode_tok_s": None, "ms_per_token": None, "prefill_tok_s": None,
        "weight_bytes_per_token": None, "bandwidth_fraction": None,
        "assumed_bandwidth_tbs": args.bandwidth_tbs, "skipped": None, "error": None,
        "notes": "",
    }


def skipped_row(args, variant: str, storage: str, reason: str) -> dict:
    row = base_row(args, variant, storage)
    row["skipped"] = reason
    log(f"{variant}: skipped: {reason}")
    return row


def measure(args, variant: str, storage: str, model: Model, step, prompt: torch.Tensor,
            report_prefill: bool):
    """Warm-up and timed runs of one variant -> (row, tokens of the first timed run)."""
    for _ in range(args.warmup):
        timed_run(model, step, prompt, args.gen)
    runs = [timed_run(model, step, prompt, args.gen) for _ in range(args.repeats)]
    decode = statistics.median((args.gen - 1) / r.decode_s for r in runs)
    row = base_row(args, variant, storage)
    row["decode_tok_s"] = decode
    row["decode_runs_tok_s"] = [(args.gen - 1) / r.decode_s for r in runs]
    row["ms_per_token"] = 1e3 / decode
    if report_prefill:
        row["prefill_tok_s"] = statistics.median(args.prompt / r.prefill_s for r in runs)
    row["weight_bytes_per_token"] = model.weight_bytes_per_token()
    row["bandwidth_fraction"] = (row["weight_bytes_per_token"] * decode
                                 / (args.bandwidth_tbs * 1e12))
    log(f"{variant}: {decode:.1f} tok/s decode")
    return row, runs[0].tokens


def agreement(tokens: List[int], reference: Optional[List[int]]) -> str:
    if reference is None:
        return ""
    same = sum(a == b for a, b in zip(tokens, reference))
    return f"{same}/{len(reference)} tokens as eager"


def triton_missing() -> Optional[str]:
    try:
        importlib.import_module("triton")  # torch.compile's GPU code generator
    except Exception as e:  # ImportError, or a broken install
        return f"triton not installed ({type(e).__name__}: {e})"
    return None


def short_error(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".replace("\n", " ")
    return text if len(text) <= 300 else text[:297] + "..."


def run_compile(args, model: Model, prompt, eager_tokens) -> dict:
    storage = "bf16"
    t0 = time.perf_counter()
    # Replayed in our own CUDA graph rather than through mode="reduce-overhead": Inductor's
    # graphs treat tensors reached through a plain object (weights, KV cache) as inputs that
    # are copied in or that turn the graphs off, neither of which is the kernels' speed.
    compiled = torch.compile(model.forward, mode=args.compile_mode, fullgraph=True,
                             dynamic=False)
    step = GraphStep(compiled, prompt.device)
    compile_s = time.perf_counter() - t0
    row, tokens = measure(args, "compile-bf16", storage, model, step, prompt, False)
    row["notes"] = "; ".join(filter(None, [
        f"mode {args.compile_mode}", f"compile {compile_s:.0f} s", "prefill eager",
        agreement(tokens, eager_tokens)]))
    return row


def run_bf16_variants(args, shape: Shape, selected, device, prompt) -> List[dict]:
    rows = []
    log(f"building bf16 weights ({shape.layers} layers)")
    source = WeightSource(args.seed, device)
    model = Model(shape, source, DenseLinear, DenseLinear, args.prompt + args.gen, args.fuse)
    eager_tokens = None
    try:
        if "eager-bf16" in selected:
            row, eager_tokens = measure(args, "eager-bf16", "bf16", model, model.forward,
                                        prompt, True)
            rows.append(row)
        if "graph-bf16" in selected:
            rows.append(guarded(args, "graph-bf16", "bf16",
                                lambda: run_graph_bf16(args, model, prompt, eager_tokens)))
        if "compile-bf16" in selected:
            rows.append(compile_row(args, model, prompt, eager_tokens))
    finally:
        model = None  # drops the bf16 weights before the int4 build allocates its own
        if hasattr(torch, "_dynamo"):
            torch._dynamo.reset()
        free_memory()
    return rows


def run_graph_bf16(args, model: Model, prompt, eager_tokens) -> dict:
    if prompt.device.type != "cuda":
        return skipped_row(args, "graph-bf16", "bf16", "CUDA graphs need --device cuda")
    step = GraphStep(model.forward, prompt.device)
    row, tokens = measure(args, "graph-bf16", "bf16", model, step, prompt, False)
    row["notes"] = "; ".join(filter(None, ["prefill eager", agreement(tokens, eager_tokens)]))
    return row


def compile_row(args, model: Model, prompt, eager_tokens) -> dict:
    """The compiled variant is optional by nature: a failure is a row, not a failed run."""
    if args.no_compile:
        return skipped_row(args, "compile-bf16", "bf16", "--no-compile")
    if prompt.device.type != "cuda":
        return skipped_row(args, "compile-bf16", "bf16", "this variant needs --device cuda")
    missing = triton_missing()
    if missing:
        return skipped_row(args, "compile-bf16", "bf16", missing)
    try:
        return run_compile(args, model, prompt, eager_tokens)
    except Exception as e:
        reason = "torch.compile failed: " + short_error(e)
    torch._dynamo.reset()
    free_memory()
    return skipped_row(args, "compile-bf16", "bf16", reason)


def int4_storage(args) -> str:
    head = "int4" if args.int4_head else "bf16"
    return f"int4 g{args.int4_group} (tinygemm), head {head}"


def run_int4(args, shape: Shape, device, prompt) -> dict:
    storage = int4_storage(args)
    if device.type != "cuda":
        return skipped_row(args, "int4-graph", storage, "tinygemm int4 needs --device cuda")
    try:
        torch.ops.aten._weight_int4pack_mm  # noqa: B018  (raises where the op is missing)
    except (AttributeError, RuntimeError) as e:
        return skipped_row(args, "int4-graph", storage, "no aten._weight_int4pack_mm: " +
                           short_error(e))
    log(f"building int4 weights (group {args.int4_group}, layer by layer)")
    make = Int4Maker(args.int4_group, args.int4_inner_k_tiles)
    source = WeightSource(args.seed, device)
    model = Model(shape, source, make, make if args.int4_head else DenseLinear,
                  args.prompt + args.gen, args.fuse)
    try:
        step = GraphStep(model.forward, device)
        row, _ = measure(args, "int4-graph", storage, model, step, prompt, True)
        row["int4_check_rel_error"] = make.check_error
        row["notes"] = f"kernel vs float32 dequant reference: rel. error {make.check_error:.1e}"
        if make.check_error > 3e-2:
            row["error"] = (f"int4 check failed: rel. error {make.check_error:.2e} (packing or "
                            "zero-point convention does not match this torch's tinygemm)")
        return row
    finally:
        del model
        free_memory()


def guarded(args, variant: str, storage: str, body) -> dict:
    """Runs one variant; an exception becomes a row with the error (the run then exits 1)."""
    return guarded_many(args, [variant], lambda: [body()], storage)[0]


# ---------------------------------------------------------------------------------------------
# Output.


def fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def print_table(args, rows: List[dict]) -> None:
    print(f"device: {args.device_name}, torch {torch.__version__}")
    fused = "fused q|k|v and gate|up" if args.fuse else "7 separate projections"
    print(f"shape: {args.shape}, {args.layers} layers, {fused}; prompt {args.prompt}, "
          f"gen {args.gen}, "
          f"median of {args.repeats} after {args.warmup} warm-up")
    print()
    print(f"| variant | storage | weights read / token | decode tok/s | ms / token "
          f"| % of {args.bandwidth_tbs:g} TB/s | prefill tok/s | notes |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        gb = r["weight_bytes_per_token"]
        frac = r["bandwidth_fraction"]
        read = "" if gb is None else f"{gb / 1e9:.2f} GB"
        notes = r["notes"]
        if r["skipped"]:
            notes = "skipped: " + r["skipped"]
        if r["error"]:
            notes = "ERROR: " + r["error"]
        print(f"| {r['variant']} | {r['storage']} | {read} "
              f"| {fmt(r['decode_tok_s'], '.1f')} | {fmt(r['ms_per_token'], '.2f')} "
              f"| {fmt(None if frac is None else 100 * frac, '.1f')} "
              f"| {fmt(r['prefill_tok_s'], ',.0f')} | {notes} |")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated subset of {','.join(VARIANTS)} (default all)")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="llama3-8b")
    ap.add_argument("--layers", type=int, default=None, help="override the shape's layer count")
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--bandwidth-tbs", type=float, default=3.0,
                    help="memory bandwidth the decode rate is compared with (default 3.0 TB/s, "
                         "about the H100's copy ceiling; the same assumption as mlxn bench)")
    ap.add_argument("--int4-group", type=int, default=64, choices=(32, 64, 128, 256))
    ap.add_argument("--int4-inner-k-tiles", type=int, default=8, choices=(2, 4, 8))
    ap.add_argument("--int4-head", action="store_true",
                    help="quantize the lm head too (as mlxn's 4-bit storage does)")
    ap.add_argument("--fuse", action="store_true",
                    help="one q|k|v and one gate|up matrix a layer (as mlxn stores them) "
                         "instead of 7 separate projections")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    ap.add_argument("--compile-mode", default="max-autotune-no-cudagraphs",
                    choices=("default", "max-autotune-no-cudagraphs"),
                    help="torch.compile mode, the step then replayed in a CUDA graph (default "
                         "max-autotune-no-cudagraphs: minutes of autotuning; 'default' is "
                         "quicker)")
    ap.add_argument("--json", action="store_true", help="one JSON object a variant, a line")
    args = ap.parse_args(argv)
    selected = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in selected if v not in VARIANTS]
    if unknown or not selected:
        ap.error(f"--variants: unknown {unknown}; choose from {','.join(VARIANTS)}")
    args.selected = selected
    if args.prompt < 1 or args.gen < 2 or args.repeats < 1 or args.warmup < 0:
        ap.error("need --prompt >= 1, --gen >= 2, --repeats >= 1, --warmup >= 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        log("CUDA is not available: use --device cpu for a smoke test")
        return 1
    device = torch.device(args.device)
    shape = SHAPES[args.shape]
    if args.layers is not None:
        shape = replace(shape, layers=args.layers)
    args.layers = shape.layers
    args.device_name = (torch.cuda.get_device_name(device) if device.type == "cuda"
                        else "cpu")
    log(f"{args.device_name}, torch {torch.__version__}")
    torch.manual_seed(args.seed)
    prompt = torch.randint(0, shape.vocab, (args.prompt,), device=device,
                           generator=torch.Generator(device=device).manual_seed(args.seed + 1))
    rows: List[dict] = []
    # no_grad rather than inference_mode: tensors made under inference_mode have caught
    # torch.compile out in some versions, and nothing here needs autograd either way.
    with torch.no_grad():
        if any(v in args.selected for v in BF16_VARIANTS):
            bf16 = [v for v in BF16_VARIANTS if v in args.selected]
            rows += guarded_many(args, bf16, lambda: run_bf16_variants(
                args, shape, args.selected, device, prompt))
        if "int4-graph" in args.selected:
            rows.append(guarded(args, "int4-graph", int4_storage(args),
                                lambda: run_int4(args, shape, device, prompt)))
    if args.json:
        for r in rows:
            print(json.dumps(r), flush=True)
    else:
        print_table(args, rows)
    failed = [r["variant"] for r in rows if r["error"]]
    if failed:
        log(f"failed variants: {', '.join(failed)}")
        return 1
    return 0


def guarded_many(args, variants: List[str], body, storage: str = "bf16") -> List[dict]:
    """Runs variants that share one model (the bf16 group): an exception -- e.g. out of memory
    while building it -- becomes a row with the error for each (the run then exits 1)."""
    try:
        return body()
    except Exception as e:
        error = short_error(e)
    # Outside the except block, so the traceback (and the tensors its frames hold) is gone.
    log(f"{', '.join(variants)}: FAILED: {error}")
    free_memory()
    rows = []
    for v in variants:
        row = base_row(args, v, storage)
        row["error"] = error
        rows.append(row)
    return rows


if __name__ == "__main__":
    sys.exit(main())
