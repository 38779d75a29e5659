#!/usr/bin/env python3
"""Trains mlxn's bundled default model and writes it to models/default/ in MLX's 4-bit layout.

    scripts/fetch_corpus.sh                      # once, on a Debian machine: the corpus
    python3 tools/train_default_model.py         # the model (a few minutes on one GPU)
    python3 tools/train_default_model.py --steps 30 --out /tmp/smoke   # a quick smoke run

Steps: (1) a byte-level BPE tokenizer trained on the training documents, checked before any
model training; (2) a small LlamaForCausalLM trained on the fortune corpus (random windows of the
document stream, AdamW, warmup + cosine, bf16 autocast on CUDA, fixed seeds); the weights kept are
those with the lowest loss on a dev split; (3) the float32 model saved with save_pretrained, then
written in mlx-lm's 4-bit group-64 layout by tools/parity/mlx_layout.py and read back; (4) loss
and perplexity on a held-out validation split for the float32, bfloat16 and 4-bit weights, greedy
samples, and the model card (README.md) plus training_log.json.

Needs torch, transformers, tokenizers, numpy and jinja2; no network. Reads .testdata/corpus/
(fortunes.txt, sources.tsv, copyright/) made by scripts/fetch_corpus.sh.
"""

import argparse
import copy
import json
import math
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

# Before torch is imported: cuBLAS needs this for deterministic results.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import numpy as np  # noqa: E402
from default_model import bpe, card, corpus, export, training  # noqa: E402
from parity import safetensors_io  # noqa: E402
from parity.mlx_quant import bf16_round  # noqa: E402

# Prompts of the greedy samples in the model card: (text, is it a chat request).
SAMPLE_PROMPTS = (
    ("The meaning of life is", False),
    ("Computers are", False),
    ("Tell me a fortune.", True),
)
HYPERPARAMETERS = (
    "seed", "steps", "batch_size", "seq_len", "lr", "min_lr_ratio", "warmup", "weight_decay",
    "dropout", "grad_clip", "eval_every", "log_every", "chat_fraction", "val_fraction",
    "dev_fraction",
)  # fmt: skip


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a = p.add_argument
    a("--corpus", default=os.path.join(ROOT, ".testdata", "corpus", "fortunes.txt"))
    a("--out", default=os.path.join(ROOT, "models", "default"))
    a("--keep-f32", default="", help="also keep the float32 model (with tokenizer) in this folder")
    a("--device", default="auto", help="auto, cuda or cpu")
    a("--seed", type=int, default=1234)
    # Data
    a(
        "--val-fraction",
        type=float,
        default=0.02,
        help="documents held out for the reported numbers",
    )
    a("--dev-fraction", type=float, default=0.01, help="documents held out to pick the checkpoint")
    a(
        "--chat-fraction",
        type=float,
        default=0.3,
        help="training documents put in the chat template",
    )
    # Tokenizer and model
    a("--vocab-size", type=int, default=4096)
    a("--hidden", type=int, default=256)
    a("--layers", type=int, default=6)
    a("--heads", type=int, default=4)
    a("--kv-heads", type=int, default=2)
    a("--head-dim", type=int, default=64, help="mlxn's CUDA attention takes 64, 80, 96, 128, 256")
    a("--intermediate", type=int, default=768)
    a("--max-positions", type=int, default=512)
    # Optimization
    a("--steps", type=int, default=3000)
    a("--batch-size", type=int, default=32)
    a("--seq-len", type=int, default=256)
    a("--lr", type=float, default=1.5e-3)
    a("--min-lr-ratio", type=float, default=0.1)
    a("--warmup", type=int, default=100)
    a("--weight-decay", type=float, default=0.1)
    a("--dropout", type=float, default=0.1)
    a("--grad-clip", type=float, default=1.0)
    a("--log-every", type=int, default=50)
    a("--eval-every", type=int, default=100)
    a("--max-new-tokens", type=int, default=64)
    args = p.parse_args()
    if args.head_dim not in (64, 80, 96, 128, 256):
        p.error("--head-dim must be one of 64, 80, 96, 128, 256 (mlxn's CUDA attention)")
    if args.hidden % 64 or args.intermediate % 64 or (args.heads * args.head_dim) % 64:
        p.error(
            "--hidden, --intermediate and --heads x --head-dim must be multiples of 64 "
            "(the quantization group)"
        )
    if min(args.steps, args.warmup, args.log_every, args.eval_every) < 1:
        p.error("--steps, --warmup, --log-every and --eval-every must be positive")
    if args.seq_len > args.max_positions:
        p.error("--seq-len must not exceed --max-positions")
    return args


def stream(tok, examples, eos_id):
    """Token ids of documents, each followed by EOS, concatenated (np.int32). `examples` are
    ("plain", text) -- encoded with the BOS of the post-processor -- or ("chat", messages) --
    rendered with the chat template, which holds the BOS itself."""
    texts = [p if kind == "plain" else bpe.render_chat(p, False) for kind, p in examples]
    plain = [kind == "plain" for kind, _ in examples]
    encoded = [None] * len(texts)
    for flag in (True, False):  # encode_batch takes one add_special_tokens for all its texts
        chosen = [i for i, is_plain in enumerate(plain) if is_plain == flag]
        if chosen:
            encs = tok.encode_batch([texts[i] for i in chosen], add_special_tokens=flag)
            for i, enc in zip(chosen, encs):
                encoded[i] = enc.ids
    ids = []
    for doc_ids in encoded:
        ids.extend(doc_ids)
        ids.append(eos_id)
    return np.asarray(ids, dtype=np.int32)


class Data:
    """The corpus split, the tokenizer (trained and checked) and the token streams."""

    def __init__(self, args, work):
        self.docs, self.sha256, self.nbytes = corpus.load_documents(args.corpus)
        folder = os.path.dirname(os.path.abspath(args.corpus))
        self.sources, self.copyrights = corpus.read_sources(folder)
        self.train_docs, self.dev_docs, self.val_docs = corpus.split(
            self.docs, args.val_fraction, args.dev_fraction, args.seed
        )
        print(
            f"corpus: {len(self.docs)} documents ({self.nbytes:,} bytes, sha256 "
            f"{self.sha256[:16]}...): {len(self.train_docs)} train, {len(self.dev_docs)} dev, "
            f"{len(self.val_docs)} validation"
        )

        # The tokenizer is checked before any time goes into the model.
        self.tok_dir = os.path.join(work, "tokenizer")
        self.tok = bpe.train(self.train_docs, args.vocab_size)
        if self.tok.get_vocab_size() > args.vocab_size:
            raise SystemExit(
                f"tokenizer has {self.tok.get_vocab_size()} tokens, more than "
                f"--vocab-size {args.vocab_size}"
            )
        bpe.save(self.tok, self.tok_dir, args.max_positions)
        self.tok_report = bpe.check(
            self.tok, self.tok_dir, self.train_docs[:500] + self.val_docs[:100]
        )
        self.special = bpe.ids(self.tok)
        print(
            f"tokenizer: {self.tok.get_vocab_size()} tokens; checks {json.dumps(self.tok_report)}"
        )

        self.examples = corpus.training_examples(self.train_docs, args.chat_fraction, args.seed)
        eos = self.special[bpe.EOS]
        self.train_ids = stream(self.tok, self.examples, eos)
        self.dev_ids = stream(self.tok, [("plain", d) for d in self.dev_docs], eos)
        self.val_ids = stream(self.tok, [("plain", d) for d in self.val_docs], eos)
        self.val_bytes = sum(len(d.encode("utf-8")) for d in self.val_docs)
        print(
            f"tokens: {len(self.train_ids):,} train, {len(self.dev_ids):,} dev, "
            f"{len(self.val_ids):,} validation "
            f"({self.val_bytes / len(self.val_ids):.2f} bytes a validation token)"
        )


def evaluate(torch, model, data, args, device):
    """Validation loss, perplexity and bits per byte of `model` in float32."""
    loss, total, _ = training.mean_nll(torch, model, data.val_ids, args.seq_len, device)
    return {
        "val_loss": loss,
        "val_ppl": math.exp(loss),
        "val_bits_per_byte": total / math.log(2) / data.val_bytes,
    }


def save_and_quantize(torch, model, work):
    """save_pretrained in float32 (checked tensor by tensor against the live model), then the MLX
    4-bit layout. Returns (f32 dir, f32 state, tensors, config, reference state, counts)."""
    f32_dir = os.path.join(work, "f32")
    model.save_pretrained(f32_dir)
    state = safetensors_io.load_float32(os.path.join(f32_dir, "model.safetensors"))
    live = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    for name, value in state.items():
        if name not in live or not np.array_equal(value, live[name]):
            raise SystemExit(f"{f32_dir}: saved tensor {name} differs from the trained model")
    lost = set(live) - set(state) - {"lm_head.weight"}
    if lost:
        raise SystemExit(f"{f32_dir}: save_pretrained left out {sorted(lost)}")
    with open(os.path.join(f32_dir, "config.json")) as f:
        config = json.load(f)
    config["tie_word_embeddings"] = True  # stated even where it is the default
    tensors, qconfig, reference, counts = export.quantize(state, config)
    return f32_dir, state, tensors, qconfig, reference, counts


def greedy_samples(torch, model, data, args, device):
    corpus_text = "\n".join(data.docs)
    stop = {data.special[bpe.EOS]: bpe.EOS, data.special[bpe.END]: bpe.END}
    samples = []
    for prompt, chat in SAMPLE_PROMPTS:
        if chat:
            text = bpe.render_chat([{"role": "user", "content": prompt}], True)
            prompt_ids = data.tok.encode(text, add_special_tokens=False).ids
        else:
            prompt_ids = data.tok.encode(prompt).ids
        new, stopped = training.greedy(
            torch, model, prompt_ids, args.max_new_tokens, set(stop), args.max_positions, device
        )
        out_text = data.tok.decode(new, skip_special_tokens=True)
        samples.append({
            "prompt": prompt,
            "chat": chat,
            "prompt_ids": prompt_ids,
            "output_ids": new,
            "text": out_text if chat else prompt + out_text,
            "stopped": stopped,
            "stop_token": stop.get(new[-1], "") if new else "",
            "max_new_tokens": args.max_new_tokens,
            "generated_chars": len(out_text.strip()),
            "verbatim_prefix_chars": corpus.longest_verbatim_prefix(out_text.strip(), corpus_text),
        })  # fmt: skip
        print(f"sample ({'chat' if chat else 'text'}) {prompt!r} -> {out_text!r}")
    return samples


def main():
    args = parse_args()
    t0 = time.time()
    torch, transformers = training.import_torch()
    import tokenizers

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cuda.matmul.allow_tf32 = False  # the float32 evaluation in full precision
    torch.backends.cudnn.allow_tf32 = False
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = f"CPU ({platform.processor() or platform.machine()})"
    print(
        f"device: {device_name}; torch {torch.__version__}, transformers {transformers.__version__}"
    )

    work = tempfile.mkdtemp(prefix="mlxn-default-model-")
    data = Data(args, work)

    config = training.make_config(transformers, args, data.special)
    model = training.build_model(torch, transformers, config, device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params:,} parameters")
    result = training.train(torch, model, data.train_ids, data.dev_ids, args, device)
    model.config.attention_dropout = 0.0  # a training setting; inference has none

    train_sample = data.train_ids[: len(data.val_ids)]
    evaluation = {"f32": evaluate(torch, model, data, args, device)}
    evaluation["f32"]["train_loss"] = training.mean_nll(
        torch, model, train_sample, args.seq_len, device
    )[0]
    evaluation["train_sample_tokens"] = int(len(train_sample))

    f32_dir, state, tensors, qconfig, reference, counts = save_and_quantize(torch, model, work)
    variant = copy.deepcopy(model)
    training.load_weights(torch, variant, {k: bf16_round(v) for k, v in state.items()})
    evaluation["bf16"] = evaluate(torch, variant, data, args, device)
    training.load_weights(torch, variant, reference)  # the 4-bit model from here on
    evaluation["mlx4"] = evaluate(torch, variant, data, args, device)
    for key in ("f32", "bf16", "mlx4"):
        e = evaluation[key]
        print(
            f"validation {key:5s}: loss {e['val_loss']:.4f}  ppl {e['val_ppl']:.3f}  "
            f"bits/byte {e['val_bits_per_byte']:.4f}"
        )

    samples = greedy_samples(torch, variant, data, args, device)
    # For comparing mlxn with this run: `mlxn score` of these tokens on models/default gives
    # logits whose mean loss should come close to mean_nll_mlx4.
    check_ids = data.val_ids[:128]
    check = {
        "what": "mean over i = 1 .. n-1 of -log softmax(logits[i-1])[tokens[i]], float32",
        "tokens": [int(i) for i in check_ids],
        "mean_nll_mlx4": training.mean_nll(torch, variant, check_ids, len(check_ids), device)[0],
        "mean_nll_f32": training.mean_nll(torch, model, check_ids, len(check_ids), device)[0],
    }

    licenses = export.licenses_text(data.sources, data.copyrights)
    out = export.write_model_dir(args.out, tensors, qconfig, data.tok_dir, data.special, licenses)
    n_tensors = export.verify(os.path.join(out, "model.safetensors"), qconfig, reference)
    if args.keep_f32:
        shutil.rmtree(args.keep_f32, ignore_errors=True)
        shutil.copytree(f32_dir, args.keep_f32)
        for name in export.TOKENIZER_FILES:
            shutil.copyfile(os.path.join(data.tok_dir, name), os.path.join(args.keep_f32, name))

    cfg = model.config
    argv = [os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] + sys.argv[1:]
    log = {
        "command": "python3 " + " ".join(shlex.quote(a) for a in argv),
        "device": device_name,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "numpy": np.__version__,
        },
        "corpus": {
            "path": os.path.relpath(os.path.abspath(args.corpus), ROOT),
            "sha256": data.sha256,
            "bytes": data.nbytes,
            "documents": len(data.docs),
            "sources": data.sources,
            "train_documents": len(data.train_docs),
            "dev_documents": len(data.dev_docs),
            "val_documents": len(data.val_docs),
            "chat_documents": sum(kind == "chat" for kind, _ in data.examples),
            "train_tokens": int(len(data.train_ids)),
            "dev_tokens": int(len(data.dev_ids)),
            "val_tokens": int(len(data.val_ids)),
            "val_bytes": data.val_bytes,
        },
        "tokenizer": {
            "vocab_size": data.tok.get_vocab_size(),
            "special_tokens": data.special,
            "chat_template": bpe.CHAT_TEMPLATE,
            "checks": data.tok_report,
        },
        "model": {
            "parameters": n_params,
            "vocab_size": cfg.vocab_size,
            "hidden_size": cfg.hidden_size,
            "num_hidden_layers": cfg.num_hidden_layers,
            "num_attention_heads": cfg.num_attention_heads,
            "num_key_value_heads": cfg.num_key_value_heads,
            "head_dim": args.head_dim,
            "intermediate_size": cfg.intermediate_size,
            "rms_norm_eps": cfg.rms_norm_eps,
            "rope_theta": training.ROPE_THETA,
            "max_position_embeddings": cfg.max_position_embeddings,
        },
        "training": {
            "hyperparameters": {k: getattr(args, k) for k in HYPERPARAMETERS},
            "steps": args.steps,
            "seconds": result["seconds"],
            "tokens_per_step": result["tokens_per_step"],
            "epochs": args.steps * result["tokens_per_step"] / len(data.train_ids),
            "best_step": result["best_step"],
            "best_dev_loss": result["best_dev_loss"],
            "history": result["history"],
            "evals": result["evals"],
        },
        "evaluation": evaluation,
        "export": {
            "recipe": export.RECIPE,
            "quantization": qconfig["quantization"],
            "tensor_counts": counts,
            "tensors": n_tensors,
            # Sizes of the model files; the card and this log, written last, are not listed.
            "files": export.file_sizes(out),
        },
        "samples": samples,
        "mlxn_check": check,
        "total_seconds": time.time() - t0,
    }
    export.write_json(os.path.join(out, "training_log.json"), log)
    with open(os.path.join(out, "README.md"), "w", encoding="utf-8") as f:
        f.write(card.render(log))
    shutil.rmtree(work, ignore_errors=True)
    total = sum(export.file_sizes(out).values())
    print(f"wrote {out} ({total:,} bytes) in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
