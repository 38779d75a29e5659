#!/usr/bin/env bash
# Builds the training corpus of mlxn's bundled default model (tools/train_default_model.py) from
# the English fortune-cookie databases that Debian ships: downloads the packages with
# `apt-get download`, unpacks them with `dpkg-deb -x` under .testdata/corpus/ (git-ignored), keeps
# each fortune as one document and writes them, UTF-8, to .testdata/corpus/fortunes.txt separated
# by lines holding only "%" (the fortune format itself). Next to it: copyright/<package> (each
# package's Debian copyright file, which the model card cites) and sources.tsv (package, version,
# licence, files, documents). Prints the document count, the size and the sha256.
#
# Packages are kept only when they come from Debian's main section (DFSG-free) and their copyright
# file names a licence we recognize; the offensive sets (fortunes-off and the ROT13-encoded files
# that strfile marks as rotated) are never used. Needs apt-get, dpkg-deb, python3 (standard
# library only) and network access to the Debian archive. MLXN_TESTDATA_DIR overrides .testdata.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${MLXN_TESTDATA_DIR:-$root/.testdata}/corpus

# English sets only. Not used: fortunes-off / *-off (offensive), fortunes-mario (Portuguese) and
# the other language packs, fortune-anarchism (one-sided political advocacy: out of place as the
# voice of a library's demo model).
packages=(fortunes-min fortunes fortunes-bofh-excuses fortunes-debian-hints tfortunes)
# Files of those packages left out: ascii-art holds pictures, not sentences.
skip_files="ascii-art"

for tool in apt-get dpkg-deb python3 sha256sum; do
  command -v "$tool" >/dev/null || { echo "fetch_corpus: $tool is needed" >&2; exit 1; }
done

# The licence that a Debian copyright file states for the package's data, or nothing when none we
# recognize is named. (tfortunes: GPL-3 code, public-domain epigrams; the epigrams are what we use.)
license_of() {
  local f=$1
  if grep -q 'Regents of the University of California' "$f"; then
    echo "BSD (University of California, 3-clause form)"
  elif grep -qE '^License: *BSD-3-clause' "$f"; then
    echo "BSD-3-clause"
  elif grep -qiE '^Copyright: *public domain|^License: *public-domain|into the public domain' "$f" ||
    grep -qzE 'believed to be in[[:space:]]+the public domain' "$f"; then
    echo "public domain"
  elif grep -qE '^License: *GPL-[23]' "$f"; then
    echo "GPL"
  fi
}

mkdir -p "$dest/debs" "$dest/copyright"
rm -rf "$dest/root" && mkdir -p "$dest/root"
: >"$dest/packages.tsv"

for pkg in "${packages[@]}"; do
  rm -f "$dest/debs/${pkg}_"*.deb
  if ! (cd "$dest/debs" && apt-get download "$pkg" >/dev/null 2>"$dest/debs/$pkg.log"); then
    echo "fetch_corpus: apt-get download $pkg failed (run apt-get update?):" >&2
    cat "$dest/debs/$pkg.log" >&2
    exit 1
  fi
  deb=$(ls "$dest/debs/${pkg}_"*.deb)
  section=$(dpkg-deb -f "$deb" Section)
  version=$(dpkg-deb -f "$deb" Version)
  # Debian's main archive holds only DFSG-free software; contrib/non-free sections say otherwise.
  case "$section" in
    contrib/* | non-free/* | non-free-firmware/*)
      echo "fetch_corpus: skipping $pkg: section $section is not DFSG-free" >&2
      continue
      ;;
  esac
  unpacked="$dest/root/$pkg"
  mkdir -p "$unpacked"
  dpkg-deb -x "$deb" "$unpacked"
  copyright="$unpacked/usr/share/doc/$pkg/copyright"
  [[ -f "$copyright" ]] || { echo "fetch_corpus: $pkg has no copyright file" >&2; exit 1; }
  license=$(license_of "$copyright")
  if [[ -z "$license" ]]; then
    echo "fetch_corpus: skipping $pkg: no recognized free licence in its copyright file" >&2
    continue
  fi
  cp "$copyright" "$dest/copyright/$pkg"
  printf '%s\t%s\t%s\t%s\n' "$pkg" "$version" "$license" "$unpacked" >>"$dest/packages.tsv"
done

python3 - "$dest" "$skip_files" <<'PY'
"""Splits the unpacked fortune files into documents, normalizes them and writes the corpus."""
import hashlib
import os
import re
import struct
import sys
import unicodedata

dest, skip = sys.argv[1], set(sys.argv[2].split())
STR_ROTATED = 0x4  # strfile's flag for ROT13-encoded (offensive) files
OVERSTRIKE = re.compile(r"[^\n]\x08")  # "_\bx" underlines, "x\bx" bolds: keep the last char
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# A UTF-8 sequence that was once decoded as Latin-1 ("donâ\x80\x99t", "Â£5"): a lead byte
# followed by continuation bytes, each stored as its own character.
MOJIBAKE = re.compile("[\u00c2-\u00f4][\u0080-\u00bf]+")


def rotated(path):
    """True if the strfile index next to `path` marks it ROT13-encoded."""
    dat = path + ".dat"
    if not os.path.isfile(dat):
        return False
    with open(dat, "rb") as f:
        header = f.read(20)
    return len(header) == 20 and bool(struct.unpack(">5I", header)[4] & STR_ROTATED)


def undo_mojibake(match):
    try:
        return match.group(0).encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return match.group(0)  # not UTF-8 read as Latin-1 after all: keep it


def normalize(text):
    """Light clean-up of one fortune: NFC, no overstrikes or control characters, tabs expanded,
    no trailing spaces, no blank lines at the ends or more than one blank line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for _ in range(3):  # some fortunes were mis-decoded twice
        text = MOJIBAKE.sub(undo_mojibake, text)
    text = unicodedata.normalize("NFC", text)
    while OVERSTRIKE.search(text):
        text = OVERSTRIKE.sub("", text)
    text = CONTROL.sub("", text.replace("\x08", ""))
    lines = [line.expandtabs(8).rstrip() for line in text.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return text if text.strip() else ""


def fortune_documents(text):
    doc = []
    for line in text.split("\n"):
        if line.rstrip() == "%":
            yield "\n".join(doc)
            doc = []
        else:
            doc.append(line)
    yield "\n".join(doc)


def tfortune_documents(text):
    """tfortune files: each epigram is followed by a '---- tag,tag' line."""
    doc = []
    for line in text.split("\n"):
        if line.startswith("---- ") or line.rstrip() == "----":
            yield "\n".join(doc)
            doc = []
        else:
            doc.append(line)
    yield "\n".join(doc)


def read(path):
    raw = open(path, "rb").read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # the old fortune files that are not UTF-8 are Latin-1


docs, seen, sources = [], set(), []
with open(os.path.join(dest, "packages.tsv"), encoding="utf-8") as f:
    packages = [line.rstrip("\n").split("\t") for line in f if line.strip()]
for pkg, version, license, unpacked in packages:
    files = []
    for sub, split in (("usr/share/games/fortunes", fortune_documents),
                       ("usr/share/games/tfortunes/epigrams", tfortune_documents)):
        base = os.path.join(unpacked, sub)
        if not os.path.isdir(base):
            continue
        # Only the top level: subfolders hold translations (xx/) or offensive sets (off/).
        for name in sorted(os.listdir(base)):
            path = os.path.join(base, name)
            if os.path.islink(path) or not os.path.isfile(path) or name.endswith(".dat"):
                continue
            if name in skip or rotated(path):
                continue
            if split is tfortune_documents and not name.startswith("en."):
                continue
            files.append((name, path, split))
    count = 0
    for name, path, split in files:
        for doc in split(read(path)):
            doc = normalize(doc)
            if doc and doc not in seen:  # the same fortune sits in several files
                seen.add(doc)
                docs.append(doc)
                count += 1
    sources.append((pkg, version, license, " ".join(n for n, _, _ in files), count))
    print(f"fetch_corpus: {pkg} {version} ({license}): {count} documents from {len(files)} files")

if not docs:
    sys.exit("fetch_corpus: no documents")
out = os.path.join(dest, "fortunes.txt")
data = "\n%\n".join(docs).encode("utf-8") + b"\n"
with open(out + ".tmp", "wb") as f:
    f.write(data)
os.replace(out + ".tmp", out)
with open(os.path.join(dest, "sources.tsv"), "w", encoding="utf-8") as f:
    f.write("package\tversion\tlicense\tfiles\tdocuments\n")
    for row in sources:
        f.write("\t".join(str(v) for v in row) + "\n")
print(f"fetch_corpus: {out}: {len(docs)} documents, {len(data)} bytes, "
      f"sha256 {hashlib.sha256(data).hexdigest()}")
PY
rm -f "$dest/packages.tsv" "$dest"/debs/*.log
