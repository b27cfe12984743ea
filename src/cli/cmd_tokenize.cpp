// `orcd tokenize -m MODEL [--ids] [--no-bos] [--no-parse-special] [--chat] (TEXT | --stdin | -f FILE)`: the ids the
// model's tokenizer gives a text. By default one line per token (id, then the piece as a quoted string); with --ids a
// JSON list. `--batch-hex` is for tools (tests/reference/tokenizer_compare.py): each stdin line holds the hex of one
// input's bytes, each output line is {"ids": [...], "decoded_hex": "..."} (decode shows special tokens).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "common/error.h"
#include "gguf/file.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace orcd::cli {

namespace {

using tokenizer::TokenId;

struct TokenizeOptions {
    std::string model;
    std::string text;
    std::string file;
    bool from_stdin = false;
    bool ids_only = false;
    bool no_bos = false;
    bool no_parse_special = false;
    bool chat = false;
    std::string chat_template_file;
    std::string system;
    bool batch_hex = false;
};

std::string read_all(std::istream& in) {
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A token's bytes as a double-quoted string: valid UTF-8 as is, control characters escaped, and bytes that are not
// (yet) valid UTF-8, as a lone byte token is, as \xNN.
std::string quote_piece(const std::string& piece) {
    std::string out = "\"";
    for (size_t i = 0; i < piece.size();) {
        const auto c = static_cast<unsigned char>(piece[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
            ++i;
        } else if (c == '\n') {
            out += "\\n";
            ++i;
        } else if (c == '\t') {
            out += "\\t";
            ++i;
        } else if (c == '\r') {
            out += "\\r";
            ++i;
        } else if (c < 0x20 || c == 0x7F) {
            out += fmt::format("\\x{:02x}", c);
            ++i;
        } else if (c < 0x80) {
            out += static_cast<char>(c);
            ++i;
        } else {
            const tokenizer::unicode::Decoded d = tokenizer::unicode::decode_one(piece, i);
            if (d.valid) {
                out.append(piece, i, d.len);
                i += d.len;
            } else {
                out += fmt::format("\\x{:02x}", c);
                ++i;
            }
        }
    }
    return out + "\"";
}

std::string to_hex(const std::string& s) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(s.size() * 2);
    for (unsigned char c : s) {
        out += kDigits[c >> 4];
        out += kDigits[c & 15];
    }
    return out;
}

std::string from_hex(const std::string& hex, size_t line) {
    auto digit = [&](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("--batch-hex: stdin line {}: '{}' is not a hex digit", line, c));
    };
    if (hex.size() % 2 != 0) {
        throw Error(ErrorCode::InvalidArgument, fmt::format("--batch-hex: stdin line {} has an odd number of hex "
                                                            "digits ({})",
                                                            line, hex.size()));
    }
    std::string out;
    out.reserve(hex.size() / 2);
    for (size_t i = 0; i < hex.size(); i += 2) out += static_cast<char>(digit(hex[i]) * 16 + digit(hex[i + 1]));
    return out;
}

std::vector<TokenId> encode(const tokenizer::Tokenizer& tok, const std::string& text, bool no_bos, bool parse_special,
                            bool text_has_bos) {
    std::vector<TokenId> ids = tok.encode(text, /*add_special=*/true, parse_special);
    // The BOS that encode() adds goes when asked, or when the (chat-formatted) text already begins with one.
    const auto& v = tok.vocab();
    if ((no_bos || text_has_bos) && v.add_bos && !ids.empty() && ids.front() == v.bos) ids.erase(ids.begin());
    return ids;
}

void run_batch(const tokenizer::Tokenizer& tok, const TokenizeOptions& o) {
    std::string line;
    size_t n = 0;
    while (std::getline(std::cin, line)) {
        ++n;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const std::string text = from_hex(line, n);
        const auto ids = encode(tok, text, o.no_bos, !o.no_parse_special, false);
        const std::string decoded = tok.decode(ids, /*show_special=*/true);
        fmt::print("{{\"ids\": [{}], \"decoded_hex\": \"{}\"}}\n", fmt::join(ids, ", "), to_hex(decoded));
    }
    std::fflush(stdout);
}

void run(const TokenizeOptions& o) {
    const gguf::File file = gguf::File::open(o.model);
    const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(file);
    if (o.batch_hex) {
        run_batch(tok, o);
        return;
    }

    std::string text;
    if (o.from_stdin) {
        text = read_all(std::cin);
    } else if (!o.file.empty()) {
        std::ifstream in(o.file, std::ios::binary);
        if (!in) throw Error(ErrorCode::FileNotFound, fmt::format("tokenize: cannot open input file '{}'", o.file));
        text = read_all(in);
    } else {
        text = o.text;
    }

    bool parse_special = !o.no_parse_special;
    bool text_has_bos = false;
    if (o.chat) {
        const auto tmpl = tokenizer::ChatTemplate::for_tokenizer(tok, o.chat_template_file);
        std::vector<tokenizer::ChatMessage> messages;
        if (!o.system.empty()) messages.push_back({"system", o.system});
        messages.push_back({"user", text});
        text = tmpl.apply(messages, /*add_generation_prompt=*/true);
        // The formatted prompt's markers must become their tokens, whatever --no-parse-special says about TEXT.
        parse_special = true;
        const auto& v = tok.vocab();
        text_has_bos = v.valid(v.bos) && text.starts_with(v.text(v.bos));
    }

    const auto ids = encode(tok, text, o.no_bos, parse_special, text_has_bos);
    if (o.ids_only) {
        fmt::print("[{}]\n", fmt::join(ids, ", "));
        return;
    }
    std::string piece;
    for (TokenId id : ids) {
        piece.clear();
        tok.append_piece(id, /*show_special=*/true, piece);
        fmt::print("{}\t{}\n", id, quote_piece(piece));
    }
}

}  // namespace

void add_tokenize(CLI::App& app) {
    auto o = std::make_shared<TokenizeOptions>();
    CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids of a text under a model's tokenizer");
    cmd->add_option("-m,--model", o->model, "GGUF file (a model or a vocab-only file)")->required();
    auto* text = cmd->add_option("text", o->text, "Text to tokenize");
    auto* in = cmd->add_flag("--stdin", o->from_stdin, "Read the text from standard input");
    auto* file = cmd->add_option("-f,--file", o->file, "Read the text from a file");
    auto* batch = cmd->add_flag("--batch-hex", o->batch_hex,
                                "Tool mode: each stdin line is one input in hex; prints one JSON line per input");
    text->excludes(in)->excludes(file)->excludes(batch);
    in->excludes(file)->excludes(batch);
    file->excludes(batch);
    cmd->add_flag("--ids", o->ids_only, "Print only the ids, as one JSON list");
    cmd->add_flag("--no-bos", o->no_bos, "Do not add the BOS token the model would add");
    cmd->add_flag("--no-parse-special", o->no_parse_special,
                  "Treat special-token texts such as <|im_start|> as plain text");
    auto* chat = cmd->add_flag("--chat", o->chat, "Format the text as a user message with the chat template first");
    cmd->add_option("--chat-template-file", o->chat_template_file,
                    "Jinja chat template file to use instead of the model's tokenizer.chat_template")
        ->needs(chat);
    cmd->add_option("--system", o->system, "System message for --chat")->needs(chat);
    cmd->callback([o, cmd]() {
        if (o->text.empty() && !o->from_stdin && o->file.empty() && !o->batch_hex && cmd->count("text") == 0) {
            throw CLI::ValidationError("tokenize", "give the TEXT, --stdin or -f FILE");
        }
        run(*o);
    });
}

}  // namespace orcd::cli
