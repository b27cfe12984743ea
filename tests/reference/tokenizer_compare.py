#!/usr/bin/env python3
"""Compares `orcd tokenize` with the Hugging Face `tokenizers` package on a generated corpus.

For each pair (our GGUF vocabulary, the model's tokenizer.json):
  qwen:   ../shared/models/vocab/ggml-vocab-qwen2.5.gguf   vs ../shared/models/tokenizers/qwen-bpe.tokenizer.json
  llama2: ../shared/models/vocab/ggml-vocab-llama-spm.gguf vs ../shared/models/tokenizers/llama2-spm.tokenizer.json
it encodes the same >= 10,000 strings with both and reports:
  - id mismatches (any is a failure): ours = `orcd tokenize --batch-hex --no-bos` (special tokens parsed),
    reference = Tokenizer.encode(text, add_special_tokens=False);
  - round-trip failures for valid UTF-8: decode(encode(s)) != s (for Qwen, != NFC(s), since its normalizer is NFC).
    Strings where the reference does not round-trip either (SentencePiece re-inserts a space after a special token;
    a literal U+2581 decodes to a space) are counted apart as "inherent".

Strings with invalid UTF-8 are given to the reference as bytes.decode('utf-8', 'replace'), which is how our tokenizer
reads them (each maximal invalid subpart becomes U+FFFD); their ids are compared, their round trip is not.

The Qwen tokenizer.json (published with Qwen3) has four added tokens that Qwen2.5's vocabulary lacks (ids 151665..
151668: <tool_response>, </tool_response>, <think>, </think>); strings containing their text are skipped for Qwen and
counted as such.

Usage (on the device machine, where `tokenizers` is installed):
  python3 tests/reference/tokenizer_compare.py [--orcd build/src/cli/orcd] [--shared ../shared] [--report out.json]
Without `tokenizers`, `--reference pybpe` runs small pure-Python models of the same tokenizer.json files (Qwen: the
`regex` module's Unicode classes, unicodedata's NFC, merges by rank; Llama 2: merges by rank with byte fallback): a
weaker, local check, independent of our C++ in its Unicode data and in SentencePiece's score-vs-rank ordering.
Exit status: 0 when there is no id mismatch and no round-trip failure beyond the inherent ones, 1 otherwise.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import unicodedata

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEED = 20261123
QWEN_EXTRA_ADDED = ["<tool_response>", "</tool_response>", "<think>", "</think>"]

# ----------------------------------------------------------------------------------------------------------------------
# Corpus
# ----------------------------------------------------------------------------------------------------------------------
WORDS = ("the of and to in is was he for it with as his on be at by had are but from or have an they which one you "
         "were all we when there can been has more if no out do so what up said about other into than its time only "
         "could new them man some these then two first may any like my now over such our over even most tokenizer "
         "model weights cache kernel tensor Hello World hello world HELLO naïve café résumé coöperate").split()
CONTRACTIONS = ["I'm", "you're", "they've", "we'll", "she'd", "it's", "don't", "can't", "won't", "I'M", "YOU'RE",
                "THEY'VE", "WE'LL", "SHE'D", "IT'S", "DON'T", "o'clock", "rock'n'roll", "'tis", "y'all", "'S", "'s",
                "'t", "'re", "'ve", "'m", "'ll", "'d", "x'S", "l'ſ"]
PHRASES = [
    "Übermäßig große Äpfel schmecken süß.", "Le cœur a ses raisons que la raison ne connaît point.",
    "Tiếng Việt có nhiều dấu thanh điệu.", "Быстрая коричневая лиса прыгает через ленивую собаку.",
    "Γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.", "مرحبا بالعالم، كيف حالك اليوم؟",
    "שלום עולם, מה שלומך?", "नमस्ते दुनिया, आप कैसे हैं?", "สวัสดีชาวโลก คุณเป็นอย่างไรบ้าง",
    "你好，世界！今天天气很好。", "我们的模型在GPU上运行得很快。", "こんにちは、世界！カタカナとひらがなと漢字。",
    "안녕하세요 세계! 한국어 문장입니다.", "გამარჯობა მსოფლიო", "Բարեւ աշխարհ", "ሰላም ዓለም",
    "Ελληνικά: αβγδεζηθικλμνξοπρστυφχψω ΑΒΓΔ", "ǅemal ǈubljana ǋegoš", "ﬁ ﬂ ﬀ ligatures", "Ａｂｃ１２３ full width",
    "½ ¼ ¾ ² ³ ⁴ ₁ ₂ Ⅳ Ⅻ ⅷ", "١٢٣٤٥ ۱۲۳ ०१२३ ๑๒๓", "e\u0301 a\u0300 o\u0308 n\u0303 (decomposed)",
    "\u1100\u1161\u11a8 \u1112\u1161\u11ab (jamo)", "Å Å Ω Ω (singletons)", "\u0915\u094d\u0937 \u0ba8\u0bbf",
]
CODE = [
    "def f(x):\n    return x * 2\n", "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
    "#include <vector>\nint main() { std::vector<int> v{1, 2, 3}; return v.size(); }\n",
    "{\"key\": [1, 2.5, -3e10, null, true], \"nested\": {\"a\": \"b\"}}", "SELECT * FROM users WHERE id = 42;",
    "if [ -f \"$file\" ]; then\n  echo \"ok\" >&2\nfi\n", "x = [i**2 for i in range(10) if i % 2 == 0]",
    "const add = (a, b) => a + b; // arrow\n", "    \n\t\n  \t  code();\r\n\r\n", "<div class=\"x\">&amp;&lt;</div>",
    "fn main() { println!(\"{:?}\", vec![1u8; 4]); }", "    @property\n    def name(self) -> str:\n        ...\n",
    "0x7fff_ffff 0b1010 1_000_000 3.14159e-10 1e+308", "a==b!=c<=d>=e&&f||g", "x+=1;y-=2;z*=3;w/=4;",
]
EMOJI = ["🦙", "😀", "👍🏽", "👩‍👩‍👧‍👦", "🇫🇷", "🇯🇵", "❤️", "☃️", "🏳️‍🌈", "1️⃣", "🤖🧠💡", "🙂\u200d", "✋🏿", "🫠"]
SPECIALS_QWEN = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
                 "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_call>", "</tool_call>", "<|vision_start|>",
                 "<|im_start", "im_end|>", "<|", "|>"]
SPECIALS_LLAMA = ["<s>", "</s>", "<unk>", "<s", "s>", "</s"]
WHITESPACE = [" ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2028", "\u2029", "\u000b", "\u000c",
              "\u0085", "\u2003", "\u200b", "\u001c", "\ufeff"]
# Blocks whose letters have been stable for many Unicode versions (so that Unicode version differences between the
# implementations cannot show): Latin, Greek, Cyrillic, Armenian, Hebrew, Arabic, Devanagari, Thai, Georgian, Hangul
# jamo, general punctuation, CJK symbols, kana, CJK ideographs, Hangul syllables, combining marks, math operators.
RANGES = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x531, 0x587),
          (0x5D0, 0x5EA), (0x620, 0x64A), (0x660, 0x669), (0x900, 0x97F), (0xE01, 0xE5B), (0x10D0, 0x10FA),
          (0x1100, 0x11FF), (0x2000, 0x206F), (0x2190, 0x22FF), (0x3000, 0x303F), (0x3041, 0x30FF), (0x4E00, 0x9FA5),
          (0xAC00, 0xD7A3), (0xFF01, 0xFF5E), (0x1F300, 0x1F64F)]


def rand_unicode(rng, n):
    out = []
    for _ in range(n):
        lo, hi = rng.choice(RANGES)
        out.append(chr(rng.randint(lo, hi)))
    return "".join(out)


def sentence(rng):
    parts = []
    for _ in range(rng.randint(1, 20)):
        r = rng.random()
        if r < 0.6:
            parts.append(rng.choice(WORDS))
        elif r < 0.75:
            parts.append(rng.choice(CONTRACTIONS))
        elif r < 0.85:
            parts.append(str(rng.randint(0, 10 ** rng.randint(1, 12))))
        else:
            parts.append(rng.choice([",", ".", "!", "?", ";", ":", "...", "--", "(", ")", "\"", "'"]))
    text = " ".join(parts)
    return text.capitalize() if rng.random() < 0.5 else text


def invalid_bytes(rng, base):
    b = bytearray(base.encode("utf-8"))
    bad = [b"\xff", b"\xfe", b"\x80", b"\xbf", b"\xc0\xaf", b"\xe2\x82", b"\xf0\x9f\xa6", b"\xed\xa0\x80",
           b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xc3", b"\xe0\x80\x80", bytes([rng.randint(0x80, 0xff)])]
    for _ in range(rng.randint(1, 4)):
        pos = rng.randint(0, len(b))
        b[pos:pos] = rng.choice(bad)
    if rng.random() < 0.2:  # a valid multi-byte character cut short at the end
        b += "🦙".encode("utf-8")[: rng.randint(1, 3)]
    return bytes(b)


def make_corpus(n_total):
    rng = random.Random(SEED)
    items = []  # (category, bytes)

    def add(cat, s):
        items.append((cat, s if isinstance(s, bytes) else s.encode("utf-8")))

    # Fixed edge cases first.
    for s in ["", " ", "  ", "\n", "\n\n", "\t", "a", "'", "'s", " 's", "\r\n", "   \n   ", "0", "00", "000",
              "1234567890", "🦙", "\u2581", "\u2581hello", "▁▁", "<s>", "<|im_start|>", "<|im_start|><|im_end|>"]:
        add("edge", s)
    generators = [
        ("english", lambda: sentence(rng)),
        ("scripts", lambda: " ".join(rng.choice(PHRASES) for _ in range(rng.randint(1, 3)))),
        ("code", lambda: "".join(rng.choice(CODE) for _ in range(rng.randint(1, 3)))),
        ("emoji", lambda: "".join(rng.choice(EMOJI + [" ", "a", "1", "!"]) for _ in range(rng.randint(1, 12)))),
        ("whitespace", lambda: "".join(rng.choice(WHITESPACE) * rng.randint(1, 40) + rng.choice(["", "x", "1", "!", "é"])
                                       for _ in range(rng.randint(1, 6)))),
        ("long_spaces", lambda: " " * rng.randint(1, 300) + rng.choice(["", "word", "\n", "1"]) + " " * rng.randint(0, 50)),
        ("digits", lambda: "".join(rng.choice(["", " ", ".", ",", "-", "e"]) + str(rng.randint(0, 10 ** rng.randint(1, 30)))
                                   for _ in range(rng.randint(1, 6)))),
        ("specials", lambda: "".join(rng.choice(SPECIALS_QWEN + SPECIALS_LLAMA + [sentence(rng), "\n", " ", "user",
                                                                                     "assistant"])
                                     for _ in range(rng.randint(1, 8)))),
        ("qwen_extra_added", lambda: sentence(rng) + rng.choice(QWEN_EXTRA_ADDED) + sentence(rng)),
        ("invalid_utf8", lambda: invalid_bytes(rng, rng.choice([sentence(rng), rng.choice(PHRASES), rand_unicode(rng, 10)]))),
        ("random_bytes", lambda: bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 64)))),
        ("unicode_soup", lambda: rand_unicode(rng, rng.randint(1, 60))),
        ("mixed", lambda: " ".join(g() for g in [lambda: sentence(rng), lambda: rng.choice(PHRASES),
                                                  lambda: rng.choice(EMOJI), lambda: rng.choice(CODE)]
                                   if rng.random() < 0.7)),
    ]
    weights = [18, 10, 8, 6, 6, 3, 6, 8, 1, 8, 4, 12, 10]
    while len(items) < n_total - 3:
        cat, gen = rng.choices(generators, weights=weights)[0]
        add(cat, gen())
    # A few long inputs.
    add("long", " ".join(sentence(rng) for _ in range(400)))
    add("long", "".join(rng.choice(PHRASES) for _ in range(200)))
    add("long", "".join(rng.choice(CODE) for _ in range(200)))
    return items


# ----------------------------------------------------------------------------------------------------------------------
# Vocabulary agreement: the ids can only be compared if the GGUF and the tokenizer.json number their tokens alike.
# ----------------------------------------------------------------------------------------------------------------------
def gguf_tokens(path):
    """tokenizer.ggml.tokens of a GGUF file (a minimal reader: header and metadata only)."""
    import struct
    with open(path, "rb") as f:
        data = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize(fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("Q")
        s = data[pos:pos + n].decode("utf-8", errors="replace")
        pos += n
        return s

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take(scalar[t])

    if data[:4] != b"GGUF":
        sys.exit(f"{path}: not a GGUF file")
    pos = 4
    take("I")
    take("Q")
    for _ in range(take("Q")):
        key = string()
        v = value(take("I"))
        if key == "tokenizer.ggml.tokens":
            return v
    sys.exit(f"{path}: no tokenizer.ggml.tokens")


def vocab_agreement(gguf_path, json_path):
    with open(json_path, encoding="utf-8") as f:
        j = json.load(f)
    ref = dict(j["model"]["vocab"])
    for a in j.get("added_tokens", []):
        ref[a["content"]] = a["id"]
    ours = gguf_tokens(gguf_path)
    same = sum(1 for i, t in enumerate(ours) if ref.get(t) == i)
    return same, len(ours), len(ref)


# ----------------------------------------------------------------------------------------------------------------------
# Our binary
# ----------------------------------------------------------------------------------------------------------------------
def run_orcd(orcd, gguf, corpus):
    stdin = "".join(b.hex() + "\n" for _, b in corpus)
    proc = subprocess.run([orcd, "tokenize", "-m", gguf, "--batch-hex", "--no-bos"], input=stdin.encode(),
                          capture_output=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"orcd failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    lines = proc.stdout.decode().splitlines()
    if len(lines) != len(corpus):
        sys.exit(f"orcd gave {len(lines)} results for {len(corpus)} inputs")
    out = []
    for line in lines:
        j = json.loads(line)
        out.append((j["ids"], bytes.fromhex(j["decoded_hex"])))
    return out


# ----------------------------------------------------------------------------------------------------------------------
# References
# ----------------------------------------------------------------------------------------------------------------------
class HfReference:
    def __init__(self, path):
        from tokenizers import Tokenizer  # only on the device machine
        self.tok = Tokenizer.from_file(path)

    def encode(self, text):
        return self.tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids):
        return self.tok.decode(ids, skip_special_tokens=False)


def merge_by_rank(syms, ranks):
    """BPE as tokenizer.json runs it: repeatedly merge the adjacent pair of lowest rank until no pair has one."""
    while len(syms) > 1:
        best, best_rank = None, None
        for i in range(len(syms) - 1):
            r = ranks.get((syms[i], syms[i + 1]))
            if r is not None and (best_rank is None or r < best_rank):
                best, best_rank = i, r
        if best is None:
            break
        syms[best:best + 2] = [syms[best] + syms[best + 1]]
    return syms


def encode_with_added(text, added, plain):
    """Splits off added tokens leftmost-first (`added` is sorted longest first, so the longest match wins) and encodes
    the text between them with plain(s) -> list of ids."""
    ids, i, start = [], 0, 0
    while i < len(text):
        for content, tid in added:
            if text.startswith(content, i):
                ids.extend(plain(text[start:i]))
                ids.append(tid)
                i += len(content)
                start = i
                break
        else:
            i += 1
    ids.extend(plain(text[start:]))
    return ids


class PyBpeReference:
    """Byte-level BPE as tokenizer.json describes it (added tokens split leftmost-longest, NFC, Split regex, ByteLevel,
    BPE merges by rank), for the Qwen file only. Independent of our C++ in its Unicode data (the `regex` module and
    unicodedata), not in its algorithm."""

    def __init__(self, path):
        import regex
        with open(path, encoding="utf-8") as f:
            j = json.load(f)
        assert j["normalizer"]["type"] == "NFC"
        self.pattern = regex.compile(j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"])
        self.vocab = j["model"]["vocab"]
        self.id_to_token = {v: k for k, v in self.vocab.items()}
        merges = j["model"]["merges"]
        self.ranks = {tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m): i for i, m in enumerate(merges)}
        self.added = sorted(((a["content"], a["id"]) for a in j["added_tokens"]), key=lambda t: -len(t[0]))
        for content, i in self.added:
            self.id_to_token[i] = content
        self.added_ids = {i for _, i in self.added}
        bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
        cs = bs[:]
        n = 0
        for b in range(256):
            if b not in bs:
                bs.append(b)
                cs.append(256 + n)
                n += 1
        self.byte_enc = {b: chr(c) for b, c in zip(bs, cs)}
        self.byte_dec = {chr(c): b for b, c in zip(bs, cs)}

    def bpe(self, word):
        syms = [self.byte_enc[b] for b in word.encode("utf-8")]
        return [self.vocab[s] for s in merge_by_rank(syms, self.ranks)]

    def encode(self, text):
        def plain(s):
            return [t for w in self.pattern.findall(unicodedata.normalize("NFC", s)) for t in self.bpe(w)]

        return encode_with_added(text, self.added, plain)

    def decode(self, ids):
        out = bytearray()
        for i in ids:
            t = self.id_to_token[i]
            out += t.encode("utf-8") if i in self.added_ids else bytes(self.byte_dec[c] for c in t)
        return out.decode("utf-8", errors="replace")


class PySpmReference:
    """Llama 2's tokenizer.json as the `tokenizers` package runs it: added tokens split leftmost-longest, each other
    piece normalized (Prepend "▁", spaces -> "▁"), one BPE word per piece with byte fallback, merges by rank."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            j = json.load(f)
        m = j["model"]
        assert m["type"] == "BPE" and m["byte_fallback"]
        self.vocab = m["vocab"]
        self.id_to_token = {v: k for k, v in self.vocab.items()}
        self.ranks = {tuple(x.split(" ", 1)) if isinstance(x, str) else tuple(x): i for i, x in enumerate(m["merges"])}
        self.added = sorted(((a["content"], a["id"]) for a in j["added_tokens"]), key=lambda t: -len(t[0]))

    def bpe(self, word):
        syms = []
        for ch in word:
            if ch in self.vocab:
                syms.append(ch)
            else:
                syms.extend("<0x%02X>" % b for b in ch.encode("utf-8"))
        return [self.vocab[s] for s in merge_by_rank(syms, self.ranks)]

    def encode(self, text):
        def plain(s):
            return self.bpe("\u2581" + s.replace(" ", "\u2581")) if s else []

        return encode_with_added(text, self.added, plain)

    def decode(self, ids):
        out = bytearray()
        for i in ids:
            t = self.id_to_token[i]
            if len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
                out.append(int(t[3:5], 16))
            else:
                out += t.replace("\u2581", " ").encode("utf-8")
        s = out.decode("utf-8", errors="replace")
        return s[1:] if s.startswith(" ") else s


# ----------------------------------------------------------------------------------------------------------------------
def compare(name, ours, ref, corpus, nfc, skip_texts, max_show):
    stats = {"strings": len(corpus), "compared": 0, "skipped_extra_added": 0, "id_mismatches": 0,
             "roundtrip_checked": 0, "roundtrip_failures": 0, "roundtrip_inherent": 0, "decode_disagreements": 0}
    shown = []
    for (cat, raw), (our_ids, our_dec) in zip(corpus, ours):
        text = raw.decode("utf-8", errors="replace")
        if any(t in text for t in skip_texts):
            stats["skipped_extra_added"] += 1
            continue
        stats["compared"] += 1
        ref_ids = ref.encode(text)
        if list(ref_ids) != list(our_ids):
            stats["id_mismatches"] += 1
            if len(shown) < max_show:
                shown.append({"kind": "ids", "category": cat, "text": text, "ours": our_ids, "reference": list(ref_ids)})
            continue
        try:
            valid = raw.decode("utf-8") is not None
        except UnicodeDecodeError:
            valid = False
        if not valid:
            continue
        stats["roundtrip_checked"] += 1
        expected = unicodedata.normalize("NFC", text) if nfc else text
        ours_text = our_dec.decode("utf-8", errors="replace")
        ref_text = ref.decode(list(ref_ids))
        if ours_text != ref_text:
            stats["decode_disagreements"] += 1
            if len(shown) < max_show:
                shown.append({"kind": "decode", "category": cat, "text": text, "ours": ours_text, "reference": ref_text})
        if ours_text != expected:
            if ref_text != expected:
                stats["roundtrip_inherent"] += 1
            else:
                stats["roundtrip_failures"] += 1
                if len(shown) < max_show:
                    shown.append({"kind": "roundtrip", "category": cat, "text": text, "ours": ours_text})
    print(f"== {name}: " + ", ".join(f"{k}={v}" for k, v in stats.items()))
    for s in shown:
        print("   ", json.dumps(s, ensure_ascii=True)[:600])
    return stats, shown


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orcd", default=os.path.join(REPO, "build", "src", "cli", "orcd"))
    ap.add_argument("--shared", default=os.path.join(REPO, "..", "shared"))
    ap.add_argument("--count", type=int, default=12000, help="corpus size (>= 10000 for the acceptance run)")
    ap.add_argument("--reference", choices=["hf", "pybpe"], default="hf")
    ap.add_argument("--only", choices=["qwen", "llama2"], help="run one pair only")
    ap.add_argument("--report", help="write the statistics and the first mismatches as JSON here")
    ap.add_argument("--show", type=int, default=20, help="mismatches to print per pair")
    args = ap.parse_args()

    corpus = make_corpus(args.count)
    cats = {}
    for c, _ in corpus:
        cats[c] = cats.get(c, 0) + 1
    print(f"corpus: {len(corpus)} strings (seed {SEED}): " + ", ".join(f"{k} {v}" for k, v in sorted(cats.items())))

    vocab = os.path.join(args.shared, "models", "vocab")
    toks = os.path.join(args.shared, "models", "tokenizers")
    pairs = [("qwen", os.path.join(vocab, "ggml-vocab-qwen2.5.gguf"), os.path.join(toks, "qwen-bpe.tokenizer.json"),
              True, QWEN_EXTRA_ADDED),
             ("llama2", os.path.join(vocab, "ggml-vocab-llama-spm.gguf"),
              os.path.join(toks, "llama2-spm.tokenizer.json"), False, [])]
    if args.only:
        pairs = [p for p in pairs if p[0] == args.only]

    report, ok = {"corpus_size": len(corpus), "seed": SEED, "reference": args.reference, "pairs": {}}, True
    for name, gguf, json_path, nfc, skip in pairs:
        same, n_ours, n_ref = vocab_agreement(gguf, json_path)
        print(f"== {name}: {same} of {n_ours} GGUF token ids have the same text in {os.path.basename(json_path)} "
              f"({n_ref} entries)")
        if same < 0.99 * n_ours:
            # Different vocabularies (e.g. another model's tokenizer.json under this name): id comparison is
            # meaningless, and is reported as an unusable reference rather than as thousands of mismatches.
            print(f"   REFERENCE UNUSABLE: {json_path} is not the tokenizer of {os.path.basename(gguf)}")
            report["pairs"][name] = {"reference_unusable": True, "same_ids": same, "gguf_tokens": n_ours}
            ok = False
            continue
        if args.reference == "hf":
            ref = HfReference(json_path)
        else:
            ref = PyBpeReference(json_path) if name == "qwen" else PySpmReference(json_path)
        ours = run_orcd(args.orcd, gguf, corpus)
        stats, shown = compare(name, ours, ref, corpus, nfc, skip, args.show)
        report["pairs"][name] = {"stats": stats, "examples": shown}
        ok = ok and stats["id_mismatches"] == 0 and stats["roundtrip_failures"] == 0
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump(report, f, ensure_ascii=False, indent=1)
    print("RESULT:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
