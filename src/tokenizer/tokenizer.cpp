#include "tokenizer/tokenizer.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/error.h"
#include "gguf/file.h"
#include "tokenizer/bpe.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/spm.h"
#include "tokenizer/unicode.h"

namespace orcd::tokenizer {

namespace {

constexpr std::string_view kSupportedModels = "'gpt2' (byte-level BPE) and 'llama' (SentencePiece BPE)";
constexpr std::string_view kSupportedPre = "'qwen2', 'gpt-2' (also written 'gpt2') and 'default'";

}  // namespace

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::make_unique<const Vocab>(std::move(vocab))) {
    const Vocab& v = *vocab_;
    if (v.model() == "gpt2") {
        kind_ = Kind::ByteLevelBpe;
        if (v.pre() == "qwen2") {
            // Qwen's tokenizer.json normalizes with NFC before splitting; GPT-2's has no normalizer.
            model_ = std::make_unique<BpeModel>(v, PreTokenizer::Qwen2, true);
        } else if (v.pre() == "gpt-2" || v.pre() == "gpt2" || v.pre() == "default") {
            model_ = std::make_unique<BpeModel>(v, PreTokenizer::Gpt2, false);
        } else {
            throw Error(ErrorCode::Tokenizer, fmt::format("unsupported pre-tokenizer tokenizer.ggml.pre = '{}' for "
                                                          "the byte-level BPE model; supported: {}",
                                                          v.pre(), kSupportedPre));
        }
        kind_name_ = "bpe/" + (v.pre() == "qwen2" ? std::string("qwen2") : std::string("gpt-2"));
    } else if (v.model() == "llama") {
        // SentencePiece has no pre-tokenizer; llama.cpp's converter writes 'default' and ignores the key.
        kind_ = Kind::SentencePiece;
        model_ = std::make_unique<SpmModel>(v);
        kind_name_ = "spm/llama";
    } else {
        throw Error(ErrorCode::Tokenizer, fmt::format("unsupported tokenizer model tokenizer.ggml.model = '{}'; "
                                                      "supported: {}",
                                                      v.model(), kSupportedModels));
    }

    special_by_first_byte_.resize(256);
    for (size_t id = 0; id < v.size(); ++id) {
        const auto t = static_cast<TokenId>(id);
        const TokenType type = v.type(t);
        if (type != TokenType::Control && type != TokenType::UserDefined && type != TokenType::Unknown) continue;
        const std::string_view text = v.text(t);
        if (text.empty()) continue;
        special_by_first_byte_[static_cast<uint8_t>(text[0])].push_back(t);
    }
    for (auto& list : special_by_first_byte_) {
        std::stable_sort(list.begin(), list.end(),
                         [&](TokenId a, TokenId b) { return v.text(a).size() > v.text(b).size(); });
    }
}

Tokenizer Tokenizer::from_gguf(const gguf::File& file) { return Tokenizer(Vocab::from_gguf(file)); }

Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

void Tokenizer::split_special(std::string_view text, std::vector<std::pair<std::string_view, TokenId>>& parts) const {
    size_t plain_start = 0;
    for (size_t i = 0; i < text.size();) {
        TokenId found = kNoToken;
        for (TokenId id : special_by_first_byte_[static_cast<uint8_t>(text[i])]) {
            const std::string_view t = vocab_->text(id);
            if (text.compare(i, t.size(), t) == 0) {
                found = id;
                break;
            }
        }
        if (found == kNoToken) {
            ++i;
            continue;
        }
        if (i > plain_start) parts.emplace_back(text.substr(plain_start, i - plain_start), kNoToken);
        parts.emplace_back(std::string_view(), found);
        i += vocab_->text(found).size();
        plain_start = i;
    }
    if (plain_start < text.size()) parts.emplace_back(text.substr(plain_start), kNoToken);
}

std::vector<TokenId> Tokenizer::encode(std::string_view input, bool add_special, bool parse_special) const {
    const Vocab& v = *vocab_;
    std::vector<TokenId> out;
    out.reserve(input.size() / 3 + 4);
    if (add_special && v.add_bos) out.push_back(v.bos);

    std::string sanitized;
    std::string_view text = input;
    if (!unicode::is_valid_utf8(input)) {
        sanitized = unicode::sanitize_utf8(input);
        text = sanitized;
    }

    std::vector<std::pair<std::string_view, TokenId>> parts;
    if (parse_special) {
        split_special(text, parts);
    } else if (!text.empty()) {
        parts.emplace_back(text, kNoToken);
    }
    bool starts_segment = true;
    for (const auto& [plain, id] : parts) {
        if (id != kNoToken) {
            out.push_back(id);
            starts_segment = true;
        } else {
            model_->encode(plain, starts_segment, out);
            starts_segment = false;
        }
    }
    if (add_special && v.add_eos) out.push_back(v.eos);
    return out;
}

bool Tokenizer::is_special(TokenId id) const {
    const TokenType t = vocab_->type(id);
    return t == TokenType::Control || t == TokenType::Unknown || t == TokenType::Unused;
}

void Tokenizer::append_piece(TokenId id, bool show_special, std::string& out) const {
    if (!vocab_->valid(id)) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("token id {} is outside the vocabulary (0..{})", id, vocab_->size() - 1));
    }
    if (is_special(id)) {
        if (show_special) out.append(vocab_->text(id));
        return;
    }
    model_->append_bytes(id, out);
}

std::string Tokenizer::decode(std::span<const TokenId> ids, bool show_special) const {
    Detokenizer d(*this, DetokenizerOptions{.show_special = show_special, .strip_leading_space = true});
    std::string out;
    for (TokenId id : ids) out += d.push(id);
    out += d.finish();
    return out;
}

}  // namespace orcd::tokenizer
