#pragma once
// The tokenizer's vocabulary as GGUF metadata describes it (the `tokenizer.ggml.*` keys): token texts, scores, types,
// BPE merges, special ids and flags. It is copied out of the file, so a Vocab outlives the gguf::File it came from.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/text_index.h"

namespace orcd::gguf {
class File;
}

namespace orcd::tokenizer {

using TokenId = int32_t;
inline constexpr TokenId kNoToken = -1;

// Values of tokenizer.ggml.token_type, as llama.cpp's converter writes them.
enum class TokenType : int32_t {
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
};

// Transparent hashing so that maps keyed by std::string can be probed with a string_view without allocating.
struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

class Vocab {
public:
    // Reads the tokenizer.ggml.* keys. Throws Error(Tokenizer) for an inconsistent vocabulary (array sizes that
    // disagree, special ids out of range), and the gguf accessors' MetadataMissing / MetadataType errors.
    static Vocab from_gguf(const gguf::File& file);

    // Builds a vocabulary from parts (tests, tools). `types` and `scores` may be empty (normal, 0.0).
    static Vocab from_parts(std::string model, std::string pre, std::vector<std::string> tokens,
                            std::vector<float> scores, std::vector<TokenType> types, std::vector<std::string> merges);

    Vocab(Vocab&&) noexcept = default;
    Vocab& operator=(Vocab&&) noexcept = default;
    Vocab(const Vocab&) = delete;
    Vocab& operator=(const Vocab&) = delete;

    size_t size() const { return texts_.size(); }
    std::string_view text(TokenId id) const { return texts_[static_cast<size_t>(id)]; }
    float score(TokenId id) const { return scores_.empty() ? 0.0f : scores_[static_cast<size_t>(id)]; }
    TokenType type(TokenId id) const { return types_.empty() ? TokenType::Normal : types_[static_cast<size_t>(id)]; }
    bool valid(TokenId id) const { return id >= 0 && static_cast<size_t>(id) < texts_.size(); }
    // Exact-text lookup; kNoToken when absent. Duplicated texts resolve to the lowest id.
    TokenId find(std::string_view text) const;

    const std::string& model() const { return model_; }  // tokenizer.ggml.model
    const std::string& pre() const { return pre_; }      // tokenizer.ggml.pre ("default" when absent)
    const std::vector<std::string>& merges() const { return merges_; }
    const std::string& chat_template() const { return chat_template_; }  // empty when the file has none

    TokenId bos = kNoToken;
    TokenId eos = kNoToken;
    TokenId eot = kNoToken;  // end of turn: metadata, else guessed from well-known texts, else eos
    TokenId pad = kNoToken;
    TokenId unk = kNoToken;
    bool add_bos = false;
    bool add_eos = false;
    bool add_space_prefix = true;  // SentencePiece: prepend "▁" to text that starts the input or follows a special

    // Tokens that end generation (eos, eot and the other end-of-turn markers present in the vocabulary).
    std::vector<TokenId> end_of_generation;
    bool is_end_of_generation(TokenId id) const;

private:
    Vocab() = default;
    void index();  // builds the text -> id map and derived ids once the arrays are final

    std::string model_;
    std::string pre_;
    std::vector<std::string> texts_;
    std::vector<float> scores_;
    std::vector<TokenType> types_;
    std::vector<std::string> merges_;
    std::string chat_template_;
    // Indexes texts_, whose buffer stays where it is once index() has run (the vector is not resized afterwards, and
    // moving a Vocab moves the vector, not its buffer).
    TextIndex by_text_;
};

}  // namespace orcd::tokenizer
