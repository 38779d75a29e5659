"""Training and evaluation of the default model with PyTorch and transformers: the Llama
configuration, residual dropout, the training loop (random windows of the token stream, AdamW,
warmup + cosine schedule, bf16 autocast on CUDA), mean token loss over a token stream, and greedy
decoding.

Everything runs on whatever device is given (CUDA for the real run; the CPU works for a short
smoke run).
"""

import math
import time

import numpy as np

ROPE_THETA = 10000.0
RMS_EPS = 1e-5


def import_torch():
    import torch
    import transformers

    return torch, transformers


def make_config(transformers, args, special):
    """A LlamaConfig from the command-line sizes; `special` maps token -> id."""
    kwargs = {
        "vocab_size": args.vocab_size,
        "hidden_size": args.hidden,
        "intermediate_size": args.intermediate,
        "num_hidden_layers": args.layers,
        "num_attention_heads": args.heads,
        "num_key_value_heads": args.kv_heads,
        "head_dim": args.head_dim,
        "max_position_embeddings": args.max_positions,
        "rms_norm_eps": RMS_EPS,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "attention_dropout": args.dropout,
        "tie_word_embeddings": True,
        "bos_token_id": special["<|bos|>"],
        "eos_token_id": special["<|eos|>"],
        "pad_token_id": special["<|pad|>"],
    }
    if int(transformers.__version__.split(".")[0]) >= 5:
        kwargs["rope_parameters"] = {"rope_type": "default", "rope_theta": ROPE_THETA}
    else:
        kwargs["rope_theta"] = ROPE_THETA
    return transformers.LlamaConfig(**kwargs)


def build_model(torch, transformers, config, device):
    model = transformers.LlamaForCausalLM(config).to(device=device, dtype=torch.float32)
    if model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():
        model.tie_weights()  # transformers ties at construction; make sure before training
    cfg = model.config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    if head_dim != config.head_dim:
        raise RuntimeError(f"model head_dim is {head_dim}, asked for {config.head_dim}")
    if model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():
        raise RuntimeError("lm_head is not tied to embed_tokens")
    return model


def add_residual_dropout(torch, model, p):
    """Dropout on the embedding output and on the output of every attention and MLP block before
    it joins the residual stream (Llama has no such dropout; this corpus is small enough to need
    it). Forward hooks, so the saved architecture is untouched. Returns the hook handles."""
    dropout = torch.nn.functional.dropout

    def hook(module, inputs, output):
        if not module.training or p <= 0:
            return output
        if isinstance(output, tuple):  # attention returns (output, weights)
            return (dropout(output[0], p, True),) + tuple(output[1:])
        return dropout(output, p, True)

    handles = [model.model.embed_tokens.register_forward_hook(hook)]
    for layer in model.model.layers:
        handles.append(layer.self_attn.register_forward_hook(hook))
        handles.append(layer.mlp.register_forward_hook(hook))
    return handles


def mean_nll(torch, model, ids, seq_len, device, batch_size=64, amp=False):
    """Mean next-token loss (nats) over the token stream `ids` (np.int32): consecutive windows of
    seq_len + 1 tokens overlapping by one, so every token after the first is predicted once with
    the context since its window's start. Returns (mean, total, count)."""
    F = torch.nn.functional
    was_training = model.training
    model.eval()
    windows = [ids[s : s + seq_len + 1] for s in range(0, len(ids) - 1, seq_len)]
    windows = [w for w in windows if len(w) >= 2]
    total, count = 0.0, 0
    with torch.no_grad():
        i = 0
        while i < len(windows):
            j = i
            while j < len(windows) and j - i < batch_size and len(windows[j]) == len(windows[i]):
                j += 1
            x = torch.from_numpy(np.stack(windows[i:j]).astype(np.int64)).to(device)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(input_ids=x[:, :-1], use_cache=False).logits
            nll = F.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum"
            )
            total += float(nll)
            count += int(x[:, 1:].numel())
            i = j
    model.train(was_training)
    return total / count, total, count


def lr_at(step, args):
    """Linear warmup to args.lr, then cosine decay to args.lr * args.min_lr_ratio."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    low = args.lr * args.min_lr_ratio
    return low + 0.5 * (args.lr - low) * (1.0 + math.cos(math.pi * min(1.0, progress)))


def train(torch, model, train_ids, dev_ids, args, device):
    """Trains `model` in place; ends holding the weights of the evaluation with the lowest dev
    loss. Returns a dict: history (logged train losses), evals (dev losses), best_step, seconds."""
    F = torch.nn.functional
    amp = device.type == "cuda"
    seq = args.seq_len
    if len(train_ids) <= seq + 1:
        raise RuntimeError(f"training stream of {len(train_ids)} tokens is shorter than a window")
    data = torch.from_numpy(train_ids.astype(np.int64)).to(device)
    offsets = torch.arange(seq + 1, device=device)
    gen = torch.Generator(device="cpu").manual_seed(args.seed)

    decay = [p for p in model.parameters() if p.ndim >= 2]  # tied weights appear once
    other = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": args.weight_decay},
            {"params": other, "weight_decay": 0.0},
        ],
        lr=args.lr,
        betas=(0.9, 0.95),
        eps=1e-8,
        fused=amp,
    )
    handles = add_residual_dropout(torch, model, args.dropout)
    history, evals = [], []
    best = {"loss": float("inf"), "step": 0, "state": None}
    running = torch.zeros((), device=device)
    tokens_per_step = args.batch_size * seq

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    model.train()
    sync()
    start = time.perf_counter()
    for step in range(args.steps):
        lr = lr_at(step, args)
        for group in opt.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, len(train_ids) - seq, (args.batch_size,), generator=gen)
        batch = data[starts.to(device)[:, None] + offsets]
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(input_ids=batch[:, :-1], use_cache=False).logits
        loss = F.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1)
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        running += loss.detach()

        done = step + 1
        if done % args.log_every == 0 or done == args.steps:
            n = done - (history[-1]["step"] if history else 0)
            train_loss = float(running) / n
            running.zero_()
            sync()
            elapsed = time.perf_counter() - start
            history.append({"step": done, "lr": lr, "train_loss": train_loss, "seconds": elapsed})
            print(
                f"step {done:6d}/{args.steps}  loss {train_loss:.4f}  lr {lr:.2e}  "
                f"{elapsed:7.1f} s  {done * tokens_per_step / elapsed:,.0f} tok/s",
                flush=True,
            )
        if done % args.eval_every == 0 or done == args.steps:
            dev_loss = mean_nll(torch, model, dev_ids, seq, device, amp=amp)[0]
            elapsed = time.perf_counter() - start
            evals.append({"step": done, "dev_loss": dev_loss, "seconds": elapsed})
            mark = ""
            if dev_loss < best["loss"]:
                best.update(loss=dev_loss, step=done)
                best["state"] = {
                    k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
                }
                mark = "  (best)"
            print(
                f"step {done:6d}  dev loss {dev_loss:.4f}  ppl {math.exp(dev_loss):.2f}{mark}",
                flush=True,
            )
            model.train()
    sync()
    seconds = time.perf_counter() - start
    for h in handles:
        h.remove()
    if best["state"] is None:
        raise RuntimeError(f"no finite dev loss in {len(evals)} evaluations: training diverged")
    model.load_state_dict(best["state"])
    model.eval()
    return {
        "history": history,
        "evals": evals,
        "best_step": best["step"],
        "best_dev_loss": best["loss"],
        "seconds": seconds,
        "tokens_per_step": tokens_per_step,
    }


def load_weights(torch, model, state):
    """Copies `state` ({HF name: float32 numpy array}) into `model` (tied lm_head may be absent)."""
    tensors = {
        k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()
    }
    result = model.load_state_dict(tensors, strict=False)
    missing = set(result.missing_keys) - {"lm_head.weight"}
    if missing or result.unexpected_keys:
        raise RuntimeError(
            f"weights do not fit the model: missing {sorted(missing)}, "
            f"unexpected {sorted(result.unexpected_keys)}"
        )
    if model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():
        raise RuntimeError("lm_head is no longer tied to embed_tokens")


def greedy(torch, model, prompt_ids, max_new_tokens, stop_ids, max_positions, device):
    """Greedy continuation of prompt_ids (full forward per token: short and exact). Returns
    (new ids, whether a stop id ended it)."""
    ids = list(prompt_ids)
    new = []
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            if len(ids) >= max_positions:
                break
            x = torch.tensor([ids], dtype=torch.long, device=device)
            logits = model(input_ids=x, use_cache=False).logits[0, -1].float()
            nxt = int(torch.argmax(logits))
            ids.append(nxt)
            new.append(nxt)
            if nxt in stop_ids:
                return new, True
    return new, False
