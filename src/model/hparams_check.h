#pragma once
// The valid range of every hyperparameter the engines read, in one table beside the architecture registry. Each
// `<arch>.*` key has a kind (integer or float), a valid range and the reason for it; check_hparams() checks a file's
// metadata against the table and a few cross-key rules (head counts that divide, RoPE dimensions within a head) and
// lists the per-layer tensors that no layer uses (blk.N with N >= block_count). load_config() refuses a file with any
// violation; `orcd inspect` lists them and still prints the rest.
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace orcd::gguf {
class File;
}

namespace orcd::model {

enum class HparamKind : uint8_t { UInt, Float };

struct HparamRule {
    std::string_view suffix;  // the key without "<arch>.": "rope.freq_base"
    HparamKind kind;
    bool required;            // a missing required key is the reader's MetadataMissing error, not a violation
    double min;               // inclusive
    double max;               // inclusive
    std::string_view reason;  // why the range is what it is, for messages and the table in the docs
};

std::span<const HparamRule> hparam_rules();

struct HparamViolation {
    std::string key;       // the metadata key, or the tensor name for unused tensors
    std::string value;     // the value as found ("1e+300", "blk.7.attn_q.weight")
    std::string expected;  // the valid range or rule
    std::string reason;
    bool wrong_type = false;  // a value of the wrong type (a string where a number belongs), not out of range

    std::string message() const;  // "key = value: expected ... (reason)"
};

// Every violation in the file's hyperparameters, in table order, then the cross-key rules, then unused tensors (their
// names, at most 16, and a count). Empty for an unknown architecture (the caller reports that). Never throws for
// bad values; wrong value types (a string where a number belongs) are violations too.
std::vector<HparamViolation> check_hparams(const gguf::File& file);

// Throws naming the file and every violation when check_hparams finds any: Error(MetadataType) when a value has the
// wrong type (as the reader's typed accessors do), otherwise Error(CorruptFile).
void require_valid_hparams(const gguf::File& file);

}  // namespace orcd::model
