"""The default model's training corpus: the fortune documents that scripts/fetch_corpus.sh writes
(one file, documents separated by lines holding only "%"), their split into training, dev and
validation sets, and the chat-formatted form of some training documents (so the model also
learns to answer after the chat template's assistant header).
"""

import hashlib
import os
import random

SEPARATOR = "\n%\n"

# User turns of the chat-formatted training documents; the answer is the fortune itself.
CHAT_PROMPTS = (
    "Tell me a fortune.",
    "Give me a fortune cookie.",
    "Say something wise.",
    "Tell me something funny.",
    "Give me a quote.",
    "Tell me a joke.",
    "Do you have a saying for me?",
    "Cheer me up.",
    "Tell me something interesting.",
    "What is your advice?",
)


def load_documents(path):
    """Reads the corpus file. Returns (documents, sha256 hex of the file, size in bytes)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise SystemExit(f"{path}: cannot read the corpus ({e}); run scripts/fetch_corpus.sh")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SystemExit(f"{path}: not UTF-8 ({e})")
    docs = [d for d in text.rstrip("\n").split(SEPARATOR) if d.strip()]
    if len(docs) < 100:
        raise SystemExit(f"{path}: only {len(docs)} documents; expected the fortune corpus")
    return docs, hashlib.sha256(raw).hexdigest(), len(raw)


def split(docs, val_fraction, dev_fraction, seed):
    """Splits documents at random (fixed seed) into (train, dev, val).

    val is held out for the reported losses and perplexities, dev for choosing the checkpoint
    during training (so the reported numbers are not the ones the choice was made on). dev and
    val keep the corpus order; train is shuffled (it is the order of the training stream).
    """
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(docs) * val_fraction))
    n_dev = max(1, round(len(docs) * dev_fraction))
    val = [docs[i] for i in sorted(order[:n_val])]
    dev = [docs[i] for i in sorted(order[n_val : n_val + n_dev])]
    train = [docs[i] for i in order[n_val + n_dev :]]
    return train, dev, val


def training_examples(train_docs, chat_fraction, seed):
    """Each training document as ("plain", text) or, for about `chat_fraction` of them,
    ("chat", messages): a user turn from CHAT_PROMPTS answered by the document."""
    rng = random.Random(seed + 1)
    out = []
    for doc in train_docs:
        if rng.random() < chat_fraction:
            prompt = CHAT_PROMPTS[rng.randrange(len(CHAT_PROMPTS))]
            out.append(
                (
                    "chat",
                    [{"role": "user", "content": prompt}, {"role": "assistant", "content": doc}],
                )
            )
        else:
            out.append(("plain", doc))
    return out


def read_sources(corpus_dir):
    """The packages the corpus came from (sources.tsv of fetch_corpus.sh) as a list of dicts,
    and their copyright files as {package: text}. Both empty when the files are missing."""
    sources, copyrights = [], {}
    path = os.path.join(corpus_dir, "sources.tsv")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            header = f.readline().rstrip("\n").split("\t")
            for line in f:
                if line.strip():
                    sources.append(dict(zip(header, line.rstrip("\n").split("\t"))))
    folder = os.path.join(corpus_dir, "copyright")
    if os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as f:
                copyrights[name] = f.read()
    return sources, copyrights


def longest_verbatim_prefix(text, corpus_text):
    """Length of the longest prefix of `text` that occurs somewhere in `corpus_text` (how much of
    a generated sample is a memorized fortune)."""
    lo, hi = 0, len(text)
    while lo < hi:  # prefixes that occur form a range [0, k]: binary search for k
        mid = (lo + hi + 1) // 2
        if text[:mid] in corpus_text:
            lo = mid
        else:
            hi = mid - 1
    return lo
