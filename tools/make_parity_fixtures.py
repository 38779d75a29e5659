#!/usr/bin/env python3
"""Builds the engine's parity fixtures: tiny random models of every supported family, stored
in each format mlxn reads, with reference logits computed by transformers (eager attention,
float32, CPU) on exactly the weights each file holds.

    python3 tools/make_parity_fixtures.py --out tests/engine/fixtures [--families llama,qwen3]

Needs torch, transformers 5.x (4.x best effort) and numpy; no network, no GPU (everything runs
in float32 on the CPU, with fixed seeds). Per family it writes (under --out):
  <fam>_f32/, <fam>_bf16/            save_pretrained in float32 / bfloat16
  <fam>_mlx4_g64/, _mlx8_g32/, _mlx3_g32/, _mlx_mixed/
                                     mlx-lm quantized layouts (bfloat16 scales and biases)
  <fam>_{f32,f16,q8_0,q4_0}.gguf     llama, qwen2, qwen3, gemma3_text only
  <case>.logits.npy                  float32 [40, vocab] reference logits of every case
  manifest.json                      tokens, cases, tolerances, notes, generator versions
The reference of a converted case is the float32 transformers model loaded with the weights
read back from that case's files (dequantized, bfloat16-rounded, permutation undone, ...), so
an engine that reads the files correctly matches it up to its own arithmetic.
Every family is independent: a failing one is reported with its traceback, the others go on,
and the exit status is non-zero when any failed.
"""

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from parity import families as fams  # noqa: E402
from parity import gguf_layout, gguf_writer, mlx_layout, safetensors_io  # noqa: E402
from parity.mlx_quant import bf16_round  # noqa: E402

N_TOKENS = 40
TOKEN_SEED = 20240601
WEIGHT_STD = 0.1  # large enough that attention and logits are far from uniform
# MoE router weights: wide enough that top-k routing decisions have clear margins. With router
# logits of std ~1 (the weight std above) some of the 80 routing decisions of a fixture are
# near-ties, which any reduced-precision run resolves differently from the f32 reference -- an
# expert swap, not an error of the implementation.
ROUTER_STD = 1.0
NORM_STD = 0.1
MLX_KINDS = ["mlx4_g64", "mlx8_g32", "mlx3_g32", "mlx_mixed"]
GGUF_KINDS = [
    ("gguf_f32", "f32", gguf_writer.GGML_F32),
    ("gguf_f16", "f16", gguf_writer.GGML_F16),
    ("gguf_q8_0", "q8_0", gguf_writer.GGML_Q8_0),
    ("gguf_q4_0", "q4_0", gguf_writer.GGML_Q4_0),
]


def tolerance(kind):
    return 1e-3 if kind in ("f32", "gguf_f32") else 5e-3


def rel_l2(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def make_tokens():
    """bos, then pseudo-random ids that avoid the special ids 0-2 (a stray eos would end a
    generation loop that replays the sequence)."""
    rng = np.random.default_rng(TOKEN_SEED)
    ids = rng.integers(3, fams.VOCAB, size=N_TOKENS).tolist()
    ids[0] = fams.BOS
    return [int(t) for t in ids]


def disk_bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


class Torch:
    """The transformers/torch side: building, saving, loading and running models."""

    def __init__(self):
        import torch
        import transformers

        self.torch = torch
        self.tf = transformers
        self.v5 = int(transformers.__version__.split(".")[0]) >= 5
        torch.set_num_threads(1)  # one summation order, run to run
        torch.set_grad_enabled(False)

    def versions(self):
        return {
            "torch": self.torch.__version__,
            "transformers": self.tf.__version__,
            "numpy": np.__version__,
        }

    def build(self, family):
        """A randomly initialized float32 model of `family` and its spec."""
        torch = self.torch
        config, spec = fams.make_config(self.tf, family, self.v5)
        try:
            model = self.tf.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
        except TypeError:
            config._attn_implementation = "eager"
            model = self.tf.AutoModelForCausalLM.from_config(config)
        model = model.to(torch.float32).eval()
        self._check_eager(model, family)
        # head_dim is passed only where the config class declares it; a class that derives
        # hidden / heads instead must still land on the head dim the fixtures promise.
        cfg = model.config
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        if head_dim != fams.HEAD_DIM:
            raise RuntimeError(f"{family}: head_dim is {head_dim}, expected {fams.HEAD_DIM}")
        # Re-initialize every parameter from a seeded generator, in name order: weights
        # normal(0, WEIGHT_STD); norm weights around 1 (Gemma: around 0, applied as 1 + w).
        gen = torch.Generator().manual_seed(fams.SEEDS[family])
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            noise = torch.randn(tuple(p.shape), generator=gen, dtype=torch.float32)
            if name.endswith("norm.weight"):
                value = noise * NORM_STD + (0.0 if spec["gemma"] else 1.0)
            elif spec["moe"] and name.endswith("mlp.gate.weight"):
                value = noise * ROUTER_STD
            else:  # weights (2-D, or 3-D fused experts) and biases
                value = noise * WEIGHT_STD
            p.copy_(value)
        return model, spec

    def _check_eager(self, model, what):
        impl = getattr(model.config, "_attn_implementation", None)
        if impl not in (None, "eager"):
            raise RuntimeError(f"{what}: attention implementation is '{impl}', expected eager")

    def logits(self, model, tokens):
        ids = self.torch.tensor([tokens], dtype=self.torch.long)
        out = model(input_ids=ids, use_cache=False)
        return out.logits[0].to(self.torch.float32).cpu().numpy().astype(np.float32)

    def router_gaps(self, model, tokens, top_k):
        """Per position, the smallest gap between the k-th and (k+1)-th router logit over the
        layers, divided by the rms of that layer's router logits at that position. A small gap is
        a routing near-tie: a run whose router logits are off by that fraction may pick another
        expert at that position, which is an expert swap, not an error.

        The logits are recomputed from each router's input and weight (captured with forward
        hooks on the layers' mlp.gate), since what transformers reports as router logits has
        changed between versions (softmax probabilities in some)."""
        torch = self.torch
        gates = [layer.mlp.gate for layer in model.model.layers]
        inputs = [None] * len(gates)

        def capture(i):
            def hook(module, args, output):
                inputs[i] = args[0].detach()

            return hook

        handles = [g.register_forward_hook(capture(i)) for i, g in enumerate(gates)]
        try:
            model(input_ids=torch.tensor([tokens], dtype=torch.long), use_cache=False)
        finally:
            for h in handles:
                h.remove()
        gaps = None
        for gate, x in zip(gates, inputs):
            if x is None:
                raise RuntimeError("a router (mlp.gate) was not called in the forward pass")
            r = x.double().reshape(len(tokens), -1) @ gate.weight.double().t()
            top = torch.topk(r, top_k + 1, dim=-1).values
            rms = r.pow(2).mean(dim=-1).sqrt().clamp_min(1e-30)
            g = (top[:, top_k - 1] - top[:, top_k]) / rms
            gaps = g if gaps is None else torch.minimum(gaps, g)
        return [float(f"{v:.4g}") for v in gaps.tolist()]

    def load(self, directory):
        """Loads a saved model directory as float32 with eager attention, from local files."""
        kwargs = {"attn_implementation": "eager", "local_files_only": True}
        kwargs["dtype" if self.v5 else "torch_dtype"] = self.torch.float32
        # A tensor that failed to load would be initialized randomly: save_model's exact reload
        # check catches that, and every other directory loaded here has the same tensor names.
        model = self.tf.AutoModelForCausalLM.from_pretrained(directory, **kwargs)
        model = model.to(self.torch.float32).eval()
        self._check_eager(model, directory)
        return model

    def save(self, model, directory, dtype):
        remove(directory)
        m = model if dtype == "f32" else copy.deepcopy(model).to(self.torch.bfloat16)
        m.save_pretrained(directory)
        if os.path.exists(os.path.join(directory, "model.safetensors.index.json")):
            raise RuntimeError(f"{directory}: save_pretrained sharded a tiny model")
        if not os.path.exists(os.path.join(directory, "model.safetensors")):
            raise RuntimeError(f"{directory}: save_pretrained wrote no model.safetensors")
        normalize_experts(os.path.join(directory, "model.safetensors"))
        # config.json leaves out values equal to the defaults; readers default a missing
        # tie_word_embeddings per family, so state it whatever the defaults are.
        path = os.path.join(directory, "config.json")
        with open(path) as f:
            config = json.load(f)
        tie = getattr(model.config, "tie_word_embeddings", None)
        if "tie_word_embeddings" not in config and tie is not None:
            config["tie_word_embeddings"] = bool(tie)
            with open(path, "w") as f:
                json.dump(config, f, indent=2, sort_keys=True)
                f.write("\n")


def normalize_experts(path):
    """Rewrites fused MoE expert tensors (transformers 5.x in-memory form: mlp.experts.gate_up_proj
    [E, 2F, H] gate rows first, mlp.experts.down_proj [E, H, F]) as the per-expert Hugging Face
    checkpoint names, if save_pretrained wrote them fused. Other tensors are kept as stored."""
    tensors, metadata = safetensors_io.load(path)
    fused = [
        n for n in tensors if n.endswith((".mlp.experts.gate_up_proj", ".mlp.experts.down_proj"))
    ]
    if not fused:
        return False
    out = {n: v for n, v in tensors.items() if n not in fused}
    for name in fused:
        dtype, value = tensors[name]
        prefix = name.rsplit(".", 1)[0]  # model.layers.N.mlp.experts
        for e in range(value.shape[0]):
            if name.endswith("gate_up_proj"):
                half = value.shape[1] // 2
                out[f"{prefix}.{e}.gate_proj.weight"] = (dtype, value[e, :half])
                out[f"{prefix}.{e}.up_proj.weight"] = (dtype, value[e, half:])
            else:
                out[f"{prefix}.{e}.down_proj.weight"] = (dtype, value[e])
    safetensors_io.save(path, out, metadata or {"format": "pt"})
    print(f"  note: {path}: rewrote fused expert tensors with per-expert names")
    return True


# Fields the layouts read; config.json may leave out values equal to the class defaults.
LAYOUT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "max_position_embeddings",
    "rms_norm_eps",
    "tie_word_embeddings",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "sliding_window",
    "layer_types",
    "query_pre_attn_scalar",
    "num_experts_per_tok",
)


class Saved:
    """A model saved in float32: its config.json, the layout view of its config, its tensors
    (float32, Hugging Face checkpoint names) and its logits."""

    def __init__(self, model, spec, config, meta, state, base):
        self.model = model
        self.spec = spec
        self.config = config  # config.json as saved
        self.meta = meta  # config.json with the LAYOUT_FIELDS defaults filled in
        self.state = state
        self.base = base  # logits of the float32 model
        self.tied = bool(meta.get("tie_word_embeddings", spec["gemma"]))


class FamilyRun:
    """Writes all cases of one family; `cases` collects the manifest entries."""

    def __init__(self, tx, family, out, tokens, tmp_root):
        self.tx, self.family, self.out, self.tokens, self.tmp = tx, family, out, tokens, tmp_root
        self.cases = []
        self.moe, self.top_k = False, 0  # set by run() from the family's spec and config

    def reference(self, config, state):
        """case_logits of the float32 transformers model holding `state` (HF names)."""
        d = tempfile.mkdtemp(dir=self.tmp)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        safetensors_io.save(
            os.path.join(d, "model.safetensors"),
            {k: ("F32", np.asarray(v, dtype=np.float32)) for k, v in state.items()},
            {"format": "pt"},
        )
        return self.case_logits(self.tx.load(d))

    def case_logits(self, model):
        """The logits of `model` for the fixture tokens and, for an MoE family, its per-position
        router gaps (Torch.router_gaps), which the manifest records with the case."""
        logits = self.tx.logits(model, self.tokens)
        if not self.moe:
            return logits, None
        return logits, self.tx.router_gaps(model, self.tokens, self.top_k)

    def add_case(self, name, model_rel, kind, result, base, notes):
        """Writes the case's logits and its manifest entry; `result` is case_logits' pair."""
        logits, gaps = result
        if gaps is not None:
            worst = int(np.argmin(gaps))
            notes += (
                f"; smallest router top-k gap {gaps[worst]:.3g} x rms of the router logits "
                f"(position {worst})"
            )
        np.save(os.path.join(self.out, f"{name}.logits.npy"), np.asarray(logits, dtype=np.float32))
        entry = {
            "name": name,
            "family": self.family,
            "model": model_rel,
            "logits": f"{name}.logits.npy",
            "kind": kind,
            "tolerance": tolerance(kind),
            "notes": notes,
            "bytes": disk_bytes(os.path.join(self.out, model_rel)),
            "rel_l2_vs_f32": rel_l2(logits, base),
        }
        if gaps is not None:
            # Per position: the reference's smallest router top-k logit gap over the layers,
            # relative to the router logits' rms (Torch.router_gaps); parity_test.cpp excuses
            # reduced-precision top-1 flips where it is a near-tie.
            entry["router_gap"] = gaps
        self.cases.append(entry)
        print(f"  {name:28s} {entry['bytes']:>9d} B  rel-L2 vs f32 {entry['rel_l2_vs_f32']:.3e}")

    def save_model(self, family, directory):
        """Builds `family`, saves it in float32 to `directory` and checks that reloading the
        directory reproduces the model's logits exactly (no tensor lost on the way)."""
        model, spec = self.tx.build(family)
        base = self.tx.logits(model, self.tokens)
        self.tx.save(model, directory, "f32")
        with open(os.path.join(directory, "config.json")) as f:
            config = json.load(f)
        meta = dict(config)
        for key in LAYOUT_FIELDS:
            value = getattr(model.config, key, None)
            if key not in meta and value is not None:
                meta[key] = list(value) if isinstance(value, tuple) else value
        state = safetensors_io.load_float32(os.path.join(directory, "model.safetensors"))
        reloaded = self.tx.logits(self.tx.load(directory), self.tokens)
        if rel_l2(reloaded, base) > 1e-6:
            raise RuntimeError(
                f"{directory}: the reloaded checkpoint does not reproduce the model "
                f"(rel-L2 {rel_l2(reloaded, base):.3e}): a tensor was not saved or not loaded"
            )
        spread = float(np.std(base))
        if spread < 0.3:
            raise RuntimeError(f"{family}: logits are nearly flat (std {spread:.3f})")
        print(f"  {family}: logits std {spread:.3f}, {len(state)} tensors")
        return Saved(model, spec, config, meta, state, base)

    def run(self, kinds):
        fam, out = self.family, self.out
        f32_dir = (
            os.path.join(out, f"{fam}_f32") if "f32" in kinds else tempfile.mkdtemp(dir=self.tmp)
        )
        m = self.save_model(fam, f32_dir)
        notes = m.spec["notes"]
        self.moe = bool(m.spec["moe"])
        self.top_k = int(m.meta["num_experts_per_tok"]) if self.moe else 0

        if "f32" in kinds:
            result = self.case_logits(m.model)
            self.add_case(f"{fam}_f32", f"{fam}_f32", "f32", result, m.base, notes)

        if "bf16" in kinds:
            d = os.path.join(out, f"{fam}_bf16")
            self.tx.save(m.model, d, "bf16")
            result = self.case_logits(self.tx.load(d))
            # The bfloat16 rounding of the MLX cases is numpy's: it must agree with torch's.
            mine, _ = self.reference(m.config, {k: bf16_round(v) for k, v in m.state.items()})
            if rel_l2(mine, result[0]) > 1e-6:
                raise RuntimeError(
                    "numpy bfloat16 rounding disagrees with torch's "
                    f"({rel_l2(mine, result[0]):.3e})"
                )
            self.add_case(
                f"{fam}_bf16",
                f"{fam}_bf16",
                "bf16",
                result,
                m.base,
                notes + "; reference: the float32 model on the bfloat16-rounded weights",
            )

        for kind in MLX_KINDS:
            if kind not in kinds:
                continue
            name = f"{fam}_{kind}"
            d = os.path.join(out, name)
            tensors, qconfig, ref_state, counts = mlx_layout.build(
                m.state, m.config, kind, m.tied, m.spec["moe"]
            )
            remove(d)
            os.makedirs(d)
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(qconfig, f, indent=2)
            safetensors_io.save(os.path.join(d, "model.safetensors"), tensors, {"format": "mlx"})
            result = self.reference(m.config, ref_state)
            summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
            self.add_case(
                name,
                name,
                kind,
                result,
                m.base,
                notes + f"; tensors: {summary}; reference: dequantized weights (scale * q + bias "
                "from the stored bfloat16 scales/biases) and bfloat16 values of the rest",
            )

        if fam in fams.GGUF_FAMILIES and any(k in kinds for k, _, _ in GGUF_KINDS):
            if fam == "llama":
                # llama3 scaling has no GGUF form mlxn reads: a plain-RoPE Llama, own reference.
                m = self.save_model("llama_gguf", tempfile.mkdtemp(dir=self.tmp))
            self.run_gguf(kinds, m)

    def run_gguf(self, kinds, m):
        fam, out = self.family, self.out
        for kind, suffix, ggml_type in GGUF_KINDS:
            if kind not in kinds:
                continue
            rel = f"{fam}_{suffix}.gguf"
            path = os.path.join(out, rel)
            _, ref_state, types = gguf_layout.build(
                m.state, m.meta, fam, ggml_type, path, f"mlxn parity {fam} {suffix}", m.tied
            )
            result = self.reference(m.config, ref_state)
            hist = {}
            for t in types.values():
                hist[t] = hist.get(t, 0) + 1
            summary = ", ".join(f"{v} {k}" for k, v in sorted(hist.items()))
            self.add_case(
                f"{fam}_gguf_{suffix}",
                rel,
                kind,
                result,
                m.base,
                m.spec["notes"] + f"; architecture {gguf_layout.ARCHITECTURES[fam]}; tensors: "
                f"{summary}; reference: the weights decoded from the file with the layout undone",
            )


def family_outputs(out, fam):
    """Every path a run of `fam` may write under `out` (all kinds), so that a rerun leaves no
    file of a case it no longer writes (the manifest drops the family's old entries)."""
    names = [f"{fam}_{k}" for k in ["f32", "bf16"] + MLX_KINDS]
    cases = names + [f"{fam}_gguf_{suffix}" for _, suffix, _ in GGUF_KINDS]
    paths = [os.path.join(out, n) for n in names]
    paths += [os.path.join(out, f"{fam}_{suffix}.gguf") for _, suffix, _ in GGUF_KINDS]
    paths += [os.path.join(out, f"{c}.logits.npy") for c in cases]
    return paths


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output directory (tests/engine/fixtures)")
    p.add_argument("--families", default=",".join(fams.FAMILIES), help="comma-separated subset")
    all_kinds = ["f32", "bf16"] + MLX_KINDS + [k for k, _, _ in GGUF_KINDS]
    p.add_argument(
        "--kinds",
        default=",".join(all_kinds),
        help="comma-separated subset of " + ",".join(all_kinds),
    )
    args = p.parse_args(argv)
    args.families = [f for f in args.families.split(",") if f]
    args.kinds = [k for k in args.kinds.split(",") if k]
    for f in args.families:
        if f not in fams.FAMILIES:
            p.error(f"unknown family '{f}' (known: {', '.join(fams.FAMILIES)})")
    for k in args.kinds:
        if k not in all_kinds:
            p.error(f"unknown kind '{k}' (known: {', '.join(all_kinds)})")
    return args


def merge_manifest(path, tokens, families, new_cases, versions):
    """Keeps the entries of families this run did not touch, when the tokens are the same."""
    kept = []
    if os.path.exists(path):
        try:
            with open(path) as f:
                old = json.load(f)
            if old.get("tokens") == tokens:
                kept = [c for c in old.get("cases", []) if c.get("family") not in families]
        except (OSError, ValueError):
            kept = []
    order = {f: i for i, f in enumerate(fams.FAMILIES)}
    cases = sorted(kept + new_cases, key=lambda c: order.get(c["family"], len(order)))
    manifest = {
        "tokens": tokens,
        "dims": {
            "vocab": fams.VOCAB,
            "hidden": fams.HIDDEN,  # Qwen2 and Phi-3: heads * head_dim
            "heads": fams.HEADS,
            "head_dim": fams.HEAD_DIM,
            "kv_heads": fams.KV_HEADS,
            "intermediate": fams.INTERMEDIATE,
            "moe_intermediate": fams.MOE_INTERMEDIATE,
            "layers": fams.LAYERS,
        },
        "cases": cases,
        "generator": dict(versions, script="tools/make_parity_fixtures.py"),
    }
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return cases


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sys.stdout.reconfigure(line_buffering=True)  # keep progress and tracebacks in order
    os.makedirs(args.out, exist_ok=True)
    try:
        tx = Torch()
    except ImportError as e:
        print(f"error: {e}: this script needs torch and transformers (see --help)", file=sys.stderr)
        return 2
    tokens = make_tokens()
    print(f"transformers {tx.tf.__version__}, torch {tx.torch.__version__}; tokens {tokens}")
    new_cases, failed = [], []
    with tempfile.TemporaryDirectory(prefix="mlxn_parity_") as tmp:
        for fam in args.families:
            print(f"== {fam}")
            for path in family_outputs(args.out, fam):
                remove(path)
            run = FamilyRun(tx, fam, args.out, tokens, tmp)
            try:
                run.run(set(args.kinds))
                new_cases.extend(run.cases)
            except Exception:
                failed.append(fam)
                print(f"!! {fam} FAILED:", file=sys.stderr)
                traceback.print_exc()
                sys.stderr.flush()
    cases = merge_manifest(
        os.path.join(args.out, "manifest.json"), tokens, args.families, new_cases, tx.versions()
    )

    print()
    print(f"{'case':30s} {'bytes':>10s} {'rel-L2 vs f32':>14s}  kind")
    for c in cases:
        print(f"{c['name']:30s} {c['bytes']:>10d} {c['rel_l2_vs_f32']:>14.3e}  {c['kind']}")
    print(f"total under {args.out}: {disk_bytes(args.out) / 2**20:.2f} MiB, {len(cases)} cases")
    if failed:
        print(f"FAILED families: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
