#!/usr/bin/env python3
"""Reference logits from Hugging Face transformers for small F32 GGUF models (run on the device machine, which has
torch and transformers; the CPU engine test compares against what this writes).

For each GGUF given (an `orcd synth` F32 model: llama, qwen2, qwen3 or phi3), it reads the hyperparameters and
tensors with the tiny GGUF reader below, builds LlamaForCausalLM / Qwen2ForCausalLM / Qwen3ForCausalLM /
Phi3ForCausalLM with the same config in float64, loads the weights converted back from GGUF's layout (llama's Q/K rows un-permuted from llama.cpp's
interleaved-RoPE order back to Hugging Face's halves order; phi3's fused qkv_proj and gate_up_proj taken as they are,
since transformers fuses them the same way), runs a fixed prompt and writes, per model:
    OUT/hf_<preset>.json  {"preset", "seed", "n_vocab", "type", "tokens", "logits_file", "file_fnv1a64", ...}
    OUT/hf_<preset>.f32   logits, little-endian float32, [len(tokens)][n_vocab]

Regenerate the fixtures (see tests/engine/fixtures/README.md):
    orcd synth --preset qwen2.5-tiny --n-vocab 512 --seed 1 -o out/hf-models/qwen2.5-tiny.gguf   (same for phi3-tiny,
    llama-tiny), then on the device: python3 tests/reference/hf_reference.py --out $OUT out/hf-models/*.gguf
"""
import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np

# The prompt: fixed token ids below every vocabulary size used (the tiny models have 512 tokens).
PROMPT = [1, 17, 250, 3, 99, 511, 42, 42, 7, 300, 128, 64, 5, 0, 255, 400]


# --- A minimal GGUF reader (v2/v3, little-endian): metadata values and F32 tensors --------------------------------
SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def read_gguf(path):
    buf = Path(path).read_bytes()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("<Q")
        s = buf[pos:pos + n].decode("utf-8")
        pos += n
        return s

    def value(t):
        if t in SCALARS:
            return take(SCALARS[t])
        if t == 8:
            return string()
        if t == 9:
            et, n = take("<I"), take("<Q")
            return [value(et) for _ in range(n)]
        raise ValueError(f"{path}: unknown metadata type {t}")

    if buf[:4] != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file")
    pos = 4
    version, n_tensors, n_kv = take("<I"), take("<Q"), take("<Q")
    if version not in (2, 3):
        raise ValueError(f"{path}: GGUF version {version}")
    meta = {}
    for _ in range(n_kv):
        key = string()
        meta[key] = value(take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = string()
        dims = [take("<Q") for _ in range(take("<I"))]
        ttype, offset = take("<I"), take("<Q")
        infos.append((name, dims, ttype, offset))
    align = meta.get("general.alignment", 32)
    data = (pos + align - 1) // align * align
    tensors = {}
    for name, dims, ttype, offset in infos:
        if ttype != 0:
            raise ValueError(f"{path}: tensor {name} is not F32 (type {ttype}); use an F32 synth model")
        n = int(np.prod(dims))
        arr = np.frombuffer(buf, dtype="<f4", count=n, offset=data + offset)
        tensors[name] = arr.reshape(list(reversed(dims))).astype(np.float64)  # GGUF lists ne0 (the row) first
    return meta, tensors


# --- GGUF -> transformers ------------------------------------------------------------------------------------------
def unpermute(w, n_head):
    """Inverse of llama.cpp's convert_hf_to_gguf permute(), which reorders each head's Q/K rows from HF's
    [first half | second half] RoPE pairing to interleaved pairs."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def build(meta, t):
    import torch
    import transformers

    arch = meta["general.architecture"]
    a = lambda k, d=None: meta.get(f"{arch}.{k}", d)  # noqa: E731
    n_head, n_kv = a("attention.head_count"), a("attention.head_count_kv", a("attention.head_count"))
    E = a("embedding_length")
    head_dim = a("attention.key_length", E // n_head)  # qwen3: 128 whatever n_embd / n_head is
    vocab = t["token_embd.weight"].shape[0]
    tied = "output.weight" not in t
    common = dict(vocab_size=vocab, hidden_size=E, intermediate_size=a("feed_forward_length"),
                  num_hidden_layers=a("block_count"), num_attention_heads=n_head, num_key_value_heads=n_kv,
                  max_position_embeddings=a("context_length"), rms_norm_eps=a("attention.layer_norm_rms_epsilon"),
                  rope_theta=a("rope.freq_base", 10000.0), tie_word_embeddings=tied, hidden_act="silu",
                  attention_dropout=0.0, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    if a("rope.dimension_count", head_dim) != head_dim:
        raise ValueError("partial rotary dimensions are not handled by this script")
    if arch == "llama":
        cfg = transformers.LlamaConfig(**common, attention_bias=False, mlp_bias=False, head_dim=E // n_head)
        cls = transformers.LlamaForCausalLM
    elif arch == "qwen2":
        cfg = transformers.Qwen2Config(**common, use_sliding_window=False)
        cls = transformers.Qwen2ForCausalLM
    elif arch == "qwen3":
        # q_norm / k_norm (Qwen3RMSNorm over head_dim, eps = rms_norm_eps) sit between the projections and RoPE.
        cfg = transformers.Qwen3Config(**common, head_dim=head_dim, attention_bias=False, use_sliding_window=False)
        cls = transformers.Qwen3ForCausalLM
    elif arch == "phi3":
        cfg = transformers.Phi3Config(**common, rope_scaling=None, sliding_window=a("attention.sliding_window"),
                                      resid_pdrop=0.0,
                                      embd_pdrop=0.0, original_max_position_embeddings=a("context_length"))
        cls = transformers.Phi3ForCausalLM
    else:
        raise ValueError(f"architecture {arch} is not handled")
    # transformers 5 keeps RoPE settings in rope_parameters; make sure the file's theta is what it uses.
    rp = getattr(cfg, "rope_parameters", None)
    if isinstance(rp, dict):
        rp["rope_theta"] = float(a("rope.freq_base", 10000.0))
        rp.setdefault("rope_type", "default")
    try:  # eager attention: the plainest formulation (sdpa would do as well in float64)
        cfg._attn_implementation = "eager"
    except Exception:  # noqa: BLE001 - older/newer transformers without the setter keep their default
        pass

    sd = {"model.embed_tokens.weight": t["token_embd.weight"], "model.norm.weight": t["output_norm.weight"]}
    if not tied:
        sd["lm_head.weight"] = t["output.weight"]
    for i in range(a("block_count")):
        b, h = f"blk.{i}.", f"model.layers.{i}."
        sd[h + "input_layernorm.weight"] = t[b + "attn_norm.weight"]
        sd[h + "post_attention_layernorm.weight"] = t[b + "ffn_norm.weight"]
        sd[h + "self_attn.o_proj.weight"] = t[b + "attn_output.weight"]
        sd[h + "mlp.down_proj.weight"] = t[b + "ffn_down.weight"]
        if arch == "phi3":
            sd[h + "self_attn.qkv_proj.weight"] = t[b + "attn_qkv.weight"]  # rows Q | K | V, as in GGUF
            sd[h + "mlp.gate_up_proj.weight"] = t[b + "ffn_up.weight"]      # rows gate | up, as in GGUF
        else:
            q, k = t[b + "attn_q.weight"], t[b + "attn_k.weight"]
            if arch == "llama":
                q, k = unpermute(q, n_head), unpermute(k, n_kv)
            sd[h + "self_attn.q_proj.weight"] = q
            sd[h + "self_attn.k_proj.weight"] = k
            sd[h + "self_attn.v_proj.weight"] = t[b + "attn_v.weight"]
            for p in ("q", "k", "v"):
                if b + f"attn_{p}.bias" in t:
                    sd[h + f"self_attn.{p}_proj.bias"] = t[b + f"attn_{p}.bias"]
            for p in ("q", "k"):
                if b + f"attn_{p}_norm.weight" in t:
                    sd[h + f"self_attn.{p}_norm.weight"] = t[b + f"attn_{p}_norm.weight"]
            sd[h + "mlp.gate_proj.weight"] = t[b + "ffn_gate.weight"]
            sd[h + "mlp.up_proj.weight"] = t[b + "ffn_up.weight"]

    torch.manual_seed(0)
    model = cls(cfg).to(torch.float64).eval()
    own = model.state_dict()
    missing = [k for k in own if k not in sd and not (tied and k == "lm_head.weight") and "rotary" not in k]
    unused = [k for k in sd if k not in own]
    if missing or unused:
        raise ValueError(f"weight mapping mismatch: missing {missing}, unused {unused}")
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}, strict=False)
    if tied:  # the LM head is the embedding (transformers versions differ in whether init already tied them)
        model.lm_head.weight = model.model.embed_tokens.weight
        assert torch.equal(model.lm_head.weight, model.model.embed_tokens.weight)
    # The rotary frequencies must be the file's (transformers versions differ in where rope_theta lives).
    inv = model.model.rotary_emb.inv_freq.double()
    want = 1.0 / (float(a("rope.freq_base", 10000.0)) ** (2.0 / head_dim))
    if abs(float(inv[1]) - want) > 1e-6 * want:
        raise ValueError(f"transformers uses inv_freq[1] = {float(inv[1])}, the file implies {want}")
    return model


def fnv1a64(data):
    """FNV-1a over the file's bytes: the C++ test recomputes it to confirm it regenerated the very same model."""
    h = 0xCBF29CE484222325
    for x in data:
        h = ((h ^ x) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="F32 GGUF files written by `orcd synth`")
    ap.add_argument("--out", required=True, help="directory for hf_<preset>.json / .f32")
    args = ap.parse_args()
    import torch
    import transformers

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in args.models:
        meta, t = read_gguf(path)
        preset = meta.get("orcd.synth.preset", Path(path).stem)
        model = build(meta, t)
        with torch.no_grad():
            logits = model(torch.tensor([PROMPT])).logits[0].to(torch.float32).numpy()
        vocab = logits.shape[1]
        (out / f"hf_{preset}.f32").write_bytes(logits.astype("<f4").tobytes())
        doc = {"preset": preset, "seed": meta.get("orcd.synth.seed"), "n_vocab": vocab, "type": "F32",
               "tokens": PROMPT, "logits_file": f"hf_{preset}.f32", "transformers": transformers.__version__,
               "torch": torch.__version__, "architecture": meta["general.architecture"],
               "file_bytes": Path(path).stat().st_size, "file_fnv1a64": fnv1a64(Path(path).read_bytes())}
        (out / f"hf_{preset}.json").write_text(json.dumps(doc, indent=1) + "\n")
        print(f"{path}: {meta['general.architecture']} preset={preset} logits {logits.shape}, "
              f"argmax {logits.argmax(-1).tolist()}", file=sys.stderr)


if __name__ == "__main__":
    main()
