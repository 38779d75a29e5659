"""The default model's tokenizer: a byte-level BPE trained with the `tokenizers` library, its
special tokens and chat template, the files that describe it (tokenizer.json,
tokenizer_config.json, chat_template.jinja) and checks that it round-trips the corpus.

The pipeline is the GPT-2 one that mlxn's tokenizer reads: NFC normalizer, ByteLevel
pre-tokenizer (GPT-2 split regex, no prefix space), BPE over the 256 byte symbols, ByteLevel
decoder, and a TemplateProcessing post-processor that puts <|bos|> in front of every encoded text.
"""

import functools
import json
import os

PAD, BOS, EOS = "<|pad|>", "<|bos|>", "<|eos|>"
SYSTEM, USER, ASSISTANT, END = "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"
# In id order: the trainer gives special tokens the first ids.
SPECIAL_TOKENS = [PAD, BOS, EOS, SYSTEM, USER, ASSISTANT, END]

# Every message is "<|role|>\n{content}<|end|>\n"; the generation prompt opens the assistant's
# turn. The template starts with the BOS token, so a rendered conversation is encoded without
# adding special tokens (what transformers' apply_chat_template(tokenize=True) does). A role
# without its own token (anything but system/user/assistant) is an error.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unsupported role: ' + message['role']) }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


def train(texts, vocab_size):
    """Trains the tokenizer on `texts` (a list of str). Returns a tokenizers.Tokenizer."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte, seen or not
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    for i, token in enumerate(SPECIAL_TOKENS):
        if tok.token_to_id(token) != i:
            raise RuntimeError(f"tokenizer: {token} got id {tok.token_to_id(token)}, expected {i}")
    bos = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos)]
    )
    return tok


def ids(tok):
    """{token: id} of the special tokens."""
    return {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}


@functools.lru_cache(maxsize=1)
def _compiled_template():
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(CHAT_TEMPLATE)


def render_chat(messages, add_generation_prompt):
    """The chat template rendered as transformers renders it (sandboxed jinja2 with trim_blocks
    and lstrip_blocks)."""
    return _compiled_template().render(
        messages=messages,
        add_generation_prompt=add_generation_prompt,
        bos_token=BOS,
        eos_token=EOS,
    )


def save(tok, directory, max_length):
    """Writes tokenizer.json, tokenizer_config.json and chat_template.jinja into `directory`."""
    os.makedirs(directory, exist_ok=True)
    tok.save(os.path.join(directory, "tokenizer.json"))
    added = {
        str(i): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for t, i in ids(tok).items()
    }
    config = {
        "added_tokens_decoder": added,
        "add_bos_token": True,  # what the post-processor does
        "add_eos_token": False,
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "unk_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "model_max_length": max_length,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(directory, "chat_template.jinja"), "w", encoding="utf-8") as f:
        f.write(CHAT_TEMPLATE)


def check(tok, directory, docs):
    """Checks the tokenizer before any training time is spent on it. Raises on a failure of the
    tokenizers-library round trip or of the chat template's special tokens; what transformers
    makes of the saved files is reported (a dict), not enforced, since its loading rules vary
    between versions."""
    from tokenizers import Tokenizer

    special = ids(tok)
    reloaded = Tokenizer.from_file(os.path.join(directory, "tokenizer.json"))
    for doc in docs:
        enc = reloaded.encode(doc)
        if enc.ids[0] != special[BOS] or special[BOS] in enc.ids[1:]:
            raise RuntimeError(f"tokenizer: BOS is not added exactly once in front of {doc[:40]!r}")
        back = reloaded.decode(enc.ids, skip_special_tokens=True)
        if back != doc:
            raise RuntimeError(f"tokenizer: round trip changed {doc[:60]!r} into {back[:60]!r}")
    messages = [{"role": "user", "content": "Hello there."}]
    text = render_chat(messages, True)
    want = "<|bos|><|user|>\nHello there.<|end|>\n<|assistant|>\n"
    if text != want:
        raise RuntimeError(f"chat template renders {text!r}, expected {want!r}")
    chat_ids = reloaded.encode(text, add_special_tokens=False).ids
    for token in (BOS, USER, END, ASSISTANT):
        if chat_ids.count(special[token]) != 1:
            raise RuntimeError(
                f"tokenizer: {token} is not one token in the rendered chat {chat_ids}"
            )

    report = {"round_trip_documents": len(docs), "chat_ids": chat_ids}
    try:
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        sample = docs[0]
        report["transformers_class"] = type(hf).__name__
        report["transformers_encode_matches"] = (
            hf(sample)["input_ids"] == reloaded.encode(sample).ids
        )
        rendered = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        report["transformers_chat_template_matches"] = rendered == text
        report["transformers_bos_eos"] = [hf.bos_token, hf.eos_token]
    except Exception as e:  # informational: the engine reads the files, not transformers
        report["transformers_error"] = f"{type(e).__name__}: {e}"
    return report
