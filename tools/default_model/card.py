"""The default model's model card (models/default/README.md), written from the training log
(the dict that also becomes training_log.json), so every number in it is one the run measured.
"""

import math
import textwrap


def _ppl(loss):
    return math.exp(loss) if loss < 50 else float("inf")


def _fmt_bytes(n):
    return f"{n / 1e6:.2f} MB ({n:,} bytes)"


def _curve(log, rows=15):
    """A table of up to `rows` dev-loss evaluations (always with the kept one), each with the
    training loss logged last before it."""
    tr = log["training"]
    evals, history = tr["evals"], tr["history"]
    if len(evals) > rows:
        picks = {round(i * (len(evals) - 1) / (rows - 1)) for i in range(rows)}
        picks |= {i for i, e in enumerate(evals) if e["step"] == tr["best_step"]}
        evals = [evals[i] for i in sorted(picks)]
    lines = [
        "| step | learning rate | training loss (running mean, dropout on) | dev loss | time |",
        "|---:|---:|---:|---:|---:|",
    ]
    for e in evals:
        before = [h for h in history if h["step"] <= e["step"]]
        h = before[-1] if before else None
        lr = f"{h['lr']:.2e}" if h else ""
        loss = f"{h['train_loss']:.4f}" if h else ""
        kept = " (kept)" if e["step"] == tr["best_step"] else ""
        lines.append(
            f"| {e['step']} | {lr} | {loss} | {e['dev_loss']:.4f}{kept} | {e['seconds']:.0f} s |"
        )
    return "\n".join(lines)


def _reflow(text, width=100):
    """Re-wraps the plain paragraphs of a markdown text (not tables, lists, headings or code)."""
    out, block, fenced = [], [], False

    def flush():
        if block:
            out.append(textwrap.fill(" ".join(block), width=width, break_on_hyphens=False))
            block.clear()

    for line in text.split("\n"):
        if line.startswith("```"):
            flush()
            fenced = not fenced
            out.append(line)
        elif fenced or not line.strip() or line.startswith(("|", "#", "- ")):
            flush()
            out.append(line)
        else:
            block.append(line.strip())
    flush()
    return "\n".join(out)


def render(log):
    m, c, t, tr = log["model"], log["corpus"], log["tokenizer"], log["training"]
    ev, ex = log["evaluation"], log["export"]
    special = ", ".join(f"`{k}` {v}" for k, v in t["special_tokens"].items())
    sources = (
        "\n".join(
            f"| {s.get('package')} | {s.get('version')} | {s.get('license')} | {s.get('documents')} |"
            for s in c["sources"]
        )
        or "| (sources.tsv was missing) | | | |"
    )
    rows = []
    for key, label in (
        ("f32", "float32"),
        ("bf16", "bfloat16 (weights rounded)"),
        ("mlx4", "MLX 4-bit g64 (shipped)"),
    ):
        e = ev[key]
        rows.append(
            f"| {label} | {e['val_loss']:.4f} | {_ppl(e['val_loss']):.3f} | "
            f"{e['val_bits_per_byte']:.4f} |"
        )
    samples = []
    for s in log["samples"]:
        kind = "chat (template applied)" if s["chat"] else "plain text"
        end = (
            f"stopped at `{s['stop_token']}`"
            if s["stopped"]
            else f"cut at {s['max_new_tokens']} tokens"
        )
        samples.append(
            f"**{kind}**, prompt `{s['prompt']}` ({end}; the first {s['verbatim_prefix_chars']} "
            f"of the {s['generated_chars']} generated characters occur verbatim in the corpus):\n\n"
            + "```text\n"
            + s["text"]
            + "\n```"
        )
    files = "\n".join(f"| {name} | {size:,} |" for name, size in ex["files"].items())
    counts = ", ".join(f"{v} {k}" for k, v in sorted(ex["tensor_counts"].items()))
    h = tr["hyperparameters"]
    licences = ", ".join(sorted({s.get("license", "?") for s in c["sources"]})) or "see the table"
    return _reflow(
        f"""# mlxn default model

A {m['parameters'] / 1e6:.1f}M-parameter Llama-architecture language model trained from scratch on
English fortune cookies, stored in MLX's 4-bit layout. mlxn uses it when no `--model` is given, so
that the README's commands run offline on any machine. It writes fortune-cookie style English
(often remembering whole fortunes of its small corpus); it knows nothing else and is not an
assistant. Everything here was produced by one run of `tools/train_default_model.py`; the numbers
are copied from `training_log.json`.

## Files

| file | bytes |
|---|---:|
{files}
| README.md | this card |
| training_log.json | everything the run measured |

## Architecture

`LlamaForCausalLM` (config.json, `model_type` llama): vocabulary {m['vocab_size']}, hidden
{m['hidden_size']}, {m['num_hidden_layers']} layers, {m['num_attention_heads']} attention heads x head_dim
{m['head_dim']}, {m['num_key_value_heads']} KV heads (grouped-query attention), SwiGLU MLP of
{m['intermediate_size']}, RMSNorm (eps {m['rms_norm_eps']}), RoPE (theta {m['rope_theta']:g}),
{m['max_position_embeddings']} positions (trained on windows of {h['seq_len']} tokens), output
layer tied to the embedding. {m['parameters']:,} parameters.

Quantization: MLX affine, {ex['quantization']['bits']} bits, group {ex['quantization']['group_size']}
(`w = scale * q + bias` per group, bfloat16 scales and biases) for every linear layer and the
embedding; norms in bfloat16; no separate lm_head (tied). Tensors: {counts}. Written by
`tools/parity/mlx_layout.py` (recipe `{ex['recipe']}`), and read back to check that it decodes to
exactly the weights evaluated below.

## Tokenizer

Byte-level BPE trained with `tokenizers` {log['versions'].get('tokenizers', '?')} on the training
documents: NFC normalizer, GPT-2 split regex, {t['vocab_size']} tokens. Special tokens: {special}.
The post-processor puts `<|bos|>` in front of every encoded text (`add_bos_token` true).

Chat template (`chat_template.jinja`, also in `tokenizer_config.json`): each message becomes
`<|role|>\\n{{content}}<|end|>\\n` (roles system, user, assistant), after a leading `<|bos|>`;
`add_generation_prompt` appends `<|assistant|>\\n`. The rendered text already holds the BOS token,
so encode it without adding special tokens. Generation stops at `<|end|>` or `<|eos|>`
(`generation_config.json`).

```jinja
{t['chat_template']}
```

## Corpus

The English fortune databases of Debian, fetched and cleaned by `scripts/fetch_corpus.sh` (one
document per fortune; offensive sets, translations and ASCII art left out; duplicates removed):
{c['documents']:,} documents, {_fmt_bytes(c['bytes'])}, sha256 `{c['sha256']}`.

| package | version | licence | documents |
|---|---|---|---:|
{sources}

`CORPUS_LICENSES.txt` holds the packages' copyright files.

Split (random, seed {h['seed']}): {c['train_documents']:,} training documents
({c['train_tokens']:,} tokens, {c['chat_documents']:,} of the documents wrapped in the chat template
as the answer to a short request such as "Tell me a fortune."), {c['dev_documents']} dev documents
({c['dev_tokens']:,} tokens; used to pick the checkpoint) and {c['val_documents']} validation
documents ({c['val_tokens']:,} tokens; used for nothing but the numbers below). Each document is
`<|bos|>` + text + `<|eos|>`; the training stream concatenates them.

## Training

```
{log['command']}
```

On {log['device']} with torch {log['versions'].get('torch')}, transformers
{log['versions'].get('transformers')}: {tr['steps']} steps of {h['batch_size']} random windows of
{h['seq_len']} tokens ({tr['tokens_per_step']:,} tokens a step, {tr['epochs']:.1f} passes over the
training stream) in {tr['seconds']:.0f} s. AdamW (betas 0.9/0.95, weight decay {h['weight_decay']}
on matrices), peak learning rate {h['lr']} after {h['warmup']} warmup steps, cosine decay to
{h['lr'] * h['min_lr_ratio']:.1e}, gradient clipping {h['grad_clip']}, dropout {h['dropout']} on
attention probabilities and on the embedding and block outputs, bfloat16 autocast, seed
{h['seed']}. The dev loss was evaluated every {h['eval_every']} steps; the weights kept are those
of step {tr['best_step']} (dev loss {tr['best_dev_loss']:.4f}).

{_curve(log)}

## Evaluation

Mean next-token loss (nats) of the kept weights, computed in float32 over consecutive windows of
{h['seq_len']} tokens: {ev['f32']['train_loss']:.4f} on a {ev['train_sample_tokens']:,}-token
sample of the training stream (no dropout), {ev['f32']['val_loss']:.4f} on the validation
documents.

| weights | validation loss | perplexity | bits per byte |
|---|---:|---:|---:|
{chr(10).join(rows)}

Perplexity is per token of this tokenizer; bits per byte divide the total loss by the UTF-8 size
of the validation text. The 4-bit row runs the float32 model on the dequantized weights, which is
what mlxn computes from these files up to its own arithmetic.

## Greedy samples

From the 4-bit weights, greedy decoding, at most {log['samples'][0]['max_new_tokens'] if log['samples'] else 0} new tokens:

{(chr(10) * 2).join(samples)}

## Licence

The training text is under the licences listed in the corpus table ({licences}); its notices are in
`CORPUS_LICENSES.txt`, which goes wherever these files go. The tokenizer and the weights
are derived from it by `tools/train_default_model.py` and are distributed with mlxn.
"""
    )
