#include "server/requests.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

namespace orcd::server {

using json = nlohmann::json;

size_t utf8_length(std::string_view s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

std::string job_id_problem(std::string_view id) {
    if (id.empty()) return "expected a non-empty string, found an empty one";
    if (id.size() > kMaxJobIdBytes) return fmt::format("expected at most {} bytes, found {}", kMaxJobIdBytes, id.size());
    for (size_t i = 0; i < id.size(); ++i) {
        const char c = id[i];
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != ':' && c != '-') {
            return fmt::format("expected only the characters A-Z a-z 0-9 . _ : -, found byte 0x{:02x} at {}",
                               static_cast<unsigned char>(c), i);
        }
    }
    return {};
}

namespace {

std::string type_of(const json& v) {
    if (v.is_number_unsigned() || v.is_number_integer()) return fmt::format("the integer {}", v.dump());
    if (v.is_number_float()) return fmt::format("the number {}", v.dump());
    if (v.is_string()) {
        std::string s = v.dump();
        if (s.size() > 40) s = s.substr(0, 37) + "...";
        return fmt::format("the string {}", s);
    }
    return std::string(v.type_name());
}

// Reads the fields of one JSON object, recording an error per bad field. Absent (or null) optional fields keep the
// caller's default.
class Fields {
public:
    Fields(const json& obj, std::vector<FieldError>& errors, std::string prefix = {})
        : obj_(obj), errors_(errors), prefix_(std::move(prefix)) {}

    const json* get(const char* name) const {
        auto it = obj_.find(name);
        if (it == obj_.end() || it->is_null()) return nullptr;
        return &*it;
    }
    void fail(const std::string& field, std::string message) {
        errors_.push_back({prefix_ + field, std::move(message)});
    }

    std::optional<std::string> string(const char* name, bool required) {
        const json* v = get(name);
        if (!v) {
            if (required) fail(name, "required: expected a string, found nothing");
            return std::nullopt;
        }
        if (!v->is_string()) {
            fail(name, fmt::format("expected a string, found {}", type_of(*v)));
            return std::nullopt;
        }
        return v->get<std::string>();
    }

    // A number in [lo, hi] (or (lo, hi] when lo_open).
    std::optional<double> number(const char* name, double lo, double hi, bool lo_open, const char* want) {
        const json* v = get(name);
        if (!v) return std::nullopt;
        if (!v->is_number()) {
            fail(name, fmt::format("expected {}, found {}", want, type_of(*v)));
            return std::nullopt;
        }
        const double d = v->get<double>();
        if (!std::isfinite(d) || (lo_open ? d <= lo : d < lo) || d > hi) {
            fail(name, fmt::format("expected {}, found {}", want, v->dump()));
            return std::nullopt;
        }
        return d;
    }

    // An integer in [lo, hi]. Floats with an integral value (2.0) are accepted, as JavaScript clients send them.
    std::optional<int64_t> integer(const char* name, int64_t lo, int64_t hi, const std::string& want) {
        const json* v = get(name);
        if (!v) return std::nullopt;
        std::optional<int64_t> value;
        if (v->is_number_integer() && !v->is_number_unsigned()) {
            value = v->get<int64_t>();
        } else if (v->is_number_unsigned()) {
            const uint64_t u = v->get<uint64_t>();
            if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) value = static_cast<int64_t>(u);
        } else if (v->is_number_float()) {
            const double d = v->get<double>();
            if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.0e15) value = static_cast<int64_t>(d);
        }
        if (!value || *value < lo || *value > hi) {
            fail(name, fmt::format("expected {}, found {}", want, v->is_number() ? v->dump() : type_of(*v)));
            return std::nullopt;
        }
        return value;
    }

    std::optional<uint64_t> uint64(const char* name) {
        const json* v = get(name);
        if (!v) return std::nullopt;
        if (v->is_number_unsigned()) return v->get<uint64_t>();
        if (v->is_number_integer() && v->get<int64_t>() >= 0) return static_cast<uint64_t>(v->get<int64_t>());
        fail(name,
             fmt::format("expected an unsigned 64-bit integer, found {}", v->is_number() ? v->dump() : type_of(*v)));
        return std::nullopt;
    }

    std::optional<bool> boolean(const char* name) {
        const json* v = get(name);
        if (!v) return std::nullopt;
        if (!v->is_boolean()) {
            fail(name, fmt::format("expected true or false, found {}", type_of(*v)));
            return std::nullopt;
        }
        return v->get<bool>();
    }

    // A list of stop strings; `allow_single` accepts one bare string (OpenAI).
    std::vector<std::string> stops(const char* name, bool allow_single) {
        std::vector<std::string> out;
        const json* v = get(name);
        if (!v) return out;
        if (allow_single && v->is_string()) {
            out.push_back(v->get<std::string>());
            return out;
        }
        if (!v->is_array()) {
            fail(name, fmt::format("expected an array of at most {} strings{}, found {}", kMaxStopStrings,
                                   allow_single ? " (or one string)" : "", type_of(*v)));
            return out;
        }
        if (v->size() > kMaxStopStrings) {
            fail(name, fmt::format("expected at most {} stop strings, found {}", kMaxStopStrings, v->size()));
            return out;
        }
        for (size_t i = 0; i < v->size(); ++i) {
            const json& s = (*v)[i];
            if (!s.is_string()) {
                fail(fmt::format("{}[{}]", name, i), fmt::format("expected a string, found {}", type_of(s)));
            } else {
                out.push_back(s.get<std::string>());
            }
        }
        return out;
    }

private:
    const json& obj_;
    std::vector<FieldError>& errors_;
    std::string prefix_;
};

void check_prompt(Fields& f, const char* name, const std::string& prompt) {
    if (prompt.empty()) {
        f.fail(name, "expected a non-empty string, found an empty one");
    } else if (const size_t n = utf8_length(prompt); n > kMaxPromptChars) {
        f.fail(name, fmt::format("expected at most {} characters, found {}", kMaxPromptChars, n));
    }
}

// Sampling fields shared by /execute and the OpenAI endpoints (names as in /execute; OpenAI uses the same ones for
// temperature, top_p and seed and accepts the others as extensions).
void read_sampling(Fields& f, engine::SamplingParams& s) {
    if (auto v = f.number("temperature", 0.0, 2.0, false, "a number in [0, 2]")) s.temperature = static_cast<float>(*v);
    if (auto v = f.integer("top_k", 0, std::numeric_limits<int32_t>::max(), "an integer >= 0 (0 = off)")) {
        s.top_k = static_cast<int32_t>(*v);
    }
    if (auto v = f.number("top_p", 0.0, 1.0, false, "a number in [0, 1]")) {
        if (*v == 0.0) {
            // top_p = 0 keeps only the most likely token (OpenAI's reading); the sampler wants top_p > 0, and top-k 1
            // is the same cut.
            s.top_k = 1;
            s.top_p = 1.0f;
        } else {
            s.top_p = static_cast<float>(*v);
        }
    }
    if (auto v = f.number("min_p", 0.0, 1.0, false, "a number in [0, 1]")) s.min_p = static_cast<float>(*v);
    if (auto v = f.number("repetition_penalty", 0.0, 1.0e6, true, "a number > 0 (1 = off)")) {
        s.repeat_penalty = static_cast<float>(*v);
    }
    if (auto v = f.uint64("seed")) s.seed = *v;
}

}  // namespace

ExecuteRequest parse_execute(const json& body, uint32_t context_length, std::vector<FieldError>& errors) {
    ExecuteRequest r;
    if (!body.is_object()) {
        errors.push_back({"(body)", fmt::format("expected a JSON object, found {}", type_of(body))});
        return r;
    }
    static constexpr const char* kKnown[] = {"job_id", "prompt", "max_tokens",         "temperature", "top_p",
                                             "top_k",  "min_p",  "repetition_penalty", "stop",        "seed"};
    // Unknown fields are refused: a misspelt "temprature" silently ignored would change results unnoticed.
    for (auto it = body.begin(); it != body.end(); ++it) {
        if (std::find(std::begin(kKnown), std::end(kKnown), it.key()) == std::end(kKnown)) {
            errors.push_back({it.key(), "unknown field"});
        }
    }
    Fields f(body, errors);
    if (auto id = f.string("job_id", true)) {
        if (std::string why = job_id_problem(*id); !why.empty()) {
            f.fail("job_id", std::move(why));
        } else {
            r.job_id = std::move(*id);
        }
    }
    if (auto p = f.string("prompt", true)) {
        check_prompt(f, "prompt", *p);
        r.generate.prompt = std::move(*p);
    }
    r.generate.max_tokens = std::min<uint32_t>(128, context_length);
    if (auto v = f.integer("max_tokens", 1, context_length,
                           fmt::format("an integer in [1, {}] (the context length)", context_length))) {
        r.generate.max_tokens = static_cast<uint32_t>(*v);
    }
    read_sampling(f, r.generate.sampling);
    r.generate.stop = f.stops("stop", false);
    return r;
}

OpenAiRequest parse_openai(const json& body, bool chat, uint32_t context_length, std::vector<FieldError>& errors) {
    OpenAiRequest r;
    r.chat = chat;
    if (!body.is_object()) {
        errors.push_back({"(body)", fmt::format("expected a JSON object, found {}", type_of(body))});
        return r;
    }
    Fields f(body, errors);
    if (auto m = f.string("model", true)) r.model = std::move(*m);

    if (chat) {
        const json* msgs = f.get("messages");
        if (!msgs || !msgs->is_array() || msgs->empty()) {
            f.fail("messages", fmt::format("expected a non-empty array of messages, found {}",
                                           msgs ? (msgs->is_array() ? "an empty array" : type_of(*msgs)) : "nothing"));
        } else {
            size_t total_chars = 0;
            for (size_t i = 0; i < msgs->size(); ++i) {
                const json& m = (*msgs)[i];
                const std::string at = fmt::format("messages[{}]", i);
                if (!m.is_object()) {
                    f.fail(at, fmt::format("expected an object with role and content, found {}", type_of(m)));
                    continue;
                }
                tokenizer::ChatMessage cm;
                Fields mf(m, errors, at + ".");
                if (auto role = mf.string("role", true)) {
                    if (*role != "system" && *role != "user" && *role != "assistant" && *role != "tool" &&
                        *role != "developer") {
                        mf.fail("role", fmt::format("expected system, developer, user, assistant or tool, found "
                                                    "\"{}\"",
                                                    *role));
                    }
                    // "developer" is OpenAI's newer name for the system role.
                    cm.role = *role == "developer" ? "system" : std::move(*role);
                }
                const json* content = mf.get("content");
                if (content && content->is_string()) {
                    cm.content = content->get<std::string>();
                } else if (content && content->is_array()) {
                    // Content parts: only text can be served by a text model.
                    for (size_t k = 0; k < content->size(); ++k) {
                        const json& part = (*content)[k];
                        if (part.is_object() && part.value("type", "") == "text" && part.contains("text") &&
                            part["text"].is_string()) {
                            cm.content += part["text"].get<std::string>();
                        } else {
                            mf.fail(fmt::format("content[{}]", k),
                                    fmt::format("expected a text part {{\"type\": \"text\", \"text\": ...}}, found {}",
                                                type_of(part)));
                        }
                    }
                } else if (!(content == nullptr && cm.role == "assistant")) {
                    mf.fail("content", fmt::format("expected a string or an array of text parts, found {}",
                                                   content ? type_of(*content) : "nothing"));
                }
                total_chars += utf8_length(cm.content);
                r.messages.push_back(std::move(cm));
            }
            if (total_chars > kMaxPromptChars) {
                f.fail("messages", fmt::format("expected at most {} characters of content in all, found {}",
                                               kMaxPromptChars, total_chars));
            }
        }
    } else {
        const json* p = f.get("prompt");
        if (p && p->is_array() && p->size() == 1 && (*p)[0].is_string()) p = &(*p)[0];
        if (!p || !p->is_string()) {
            f.fail("prompt",
                   fmt::format("expected a string (or an array of one string), found {}", p ? type_of(*p) : "nothing"));
        } else {
            r.prompt = p->get<std::string>();
            check_prompt(f, "prompt", r.prompt);
            r.generate.prompt = r.prompt;
        }
    }

    // OpenAI's defaults: 16 tokens for completions, as much as fits for chat (capped here at the context).
    r.generate.max_tokens = chat ? context_length : std::min<uint32_t>(16, context_length);
    const std::string want_tokens = fmt::format("an integer in [1, {}] (the context length)", context_length);
    if (auto v = f.integer("max_tokens", 1, context_length, want_tokens))
        r.generate.max_tokens = static_cast<uint32_t>(*v);
    if (chat) {
        if (auto v = f.integer("max_completion_tokens", 1, context_length, want_tokens)) {
            r.generate.max_tokens = static_cast<uint32_t>(*v);
        }
    }
    // OpenAI's sampling has no top-k or min-p: off unless the request asks (extension fields); temperature 1.
    engine::SamplingParams& s = r.generate.sampling;
    s.temperature = 1.0f;
    s.top_p = 1.0f;
    s.top_k = 0;
    s.min_p = 0.0f;
    read_sampling(f, s);
    r.generate.stop = f.stops("stop", true);
    if (auto v = f.boolean("stream")) r.stream = *v;
    if (const json* so = f.get("stream_options")) {
        if (!so->is_object()) {
            f.fail("stream_options", fmt::format("expected an object, found {}", type_of(*so)));
        } else {
            Fields sf(*so, errors, "stream_options.");
            if (auto v = sf.boolean("include_usage")) r.include_usage = *v;
        }
    }
    if (auto n = f.integer("n", 1, 1, "1 (one choice per request)")) (void)n;
    if (auto v = f.boolean("echo"); v && *v) f.fail("echo", "echo is not supported: expected false");
    if (const json* lp = f.get("logprobs"); lp && !(lp->is_boolean() && !lp->get<bool>())) {
        f.fail("logprobs", "log probabilities are not supported: expected null or false");
    }
    return r;
}

}  // namespace orcd::server
