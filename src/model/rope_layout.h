#pragma once
// How rotary embeddings pair up the dimensions of a head, as the GGUF converters leave the Q/K rows. Defined once here
// (the model layer owns it; both backends and their device code use this enum), in a header without dependencies so
// that CUDA sources can include it.
#include <cstdint>

namespace orcd::model {

// llama's converter permutes Q/K so that pairs are adjacent (x[2i], x[2i+1]) — "interleaved" (GGML's mode 0);
// qwen2, qwen3 and phi3 keep Hugging Face's layout, pairing x[i] with x[i + rope_dim/2] — "NeoX" (GGML's mode 2).
enum class RopeLayout : uint8_t { Interleaved, NeoX };

}  // namespace orcd::model
