// Chat templates against jinja2's rendering of the real templates (fixtures written by
// tests/reference/render_chat_templates.py), plus recognition of the template texts and the errors.
#include <gtest/gtest.h>

#include <set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "gguf/file.h"
#include "test_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace orcd::tokenizer {
namespace {

using testing::read_file;
using testing::shared_dir;

nlohmann::json load_fixtures() {
    return nlohmann::json::parse(
        read_file(std::filesystem::path(ORCD_SOURCE_DIR) / "tests/tokenizer/fixtures/chat_templates.json"));
}

TEST(ChatTemplate, MatchesJinja2OnEveryFixture) {
    const auto doc = load_fixtures();
    const auto& cases = doc.at("cases");
    ASSERT_GE(cases.size(), 30u);
    size_t checked = 0;
    for (const auto& c : cases) {
        const std::string source = read_file(shared_dir() / "templates" / c.at("template_file").get<std::string>());
        // Recognised from the real template text, not from the fixture's name.
        const ChatTemplate t = ChatTemplate::detect(source, c.at("bos_token"), c.at("eos_token"));
        EXPECT_EQ(t.name(), c.at("template").get<std::string>());
        std::vector<ChatMessage> messages;
        for (const auto& m : c.at("messages")) messages.push_back({m.at("role"), m.at("content")});
        const std::string got = t.apply(messages, c.at("add_generation_prompt").get<bool>());
        EXPECT_EQ(got, c.at("expected").get<std::string>())
            << c.at("template") << " / " << c.at("conversation") << " / add_generation_prompt="
            << c.at("add_generation_prompt");
        ++checked;
    }
    std::printf("chat templates: %zu fixtures checked\n", checked);
}

TEST(ChatTemplate, FixturesCoverEachTemplateWithAndWithoutGenerationPrompt) {
    const auto doc = load_fixtures();
    std::set<std::pair<std::string, bool>> seen;
    for (const auto& c : doc.at("cases")) seen.insert({c.at("template").get<std::string>(), c.at("add_generation_prompt").get<bool>()});
    for (std::string_view name : ChatTemplate::supported_names()) {
        EXPECT_TRUE(seen.count({std::string(name), true})) << name;
        EXPECT_TRUE(seen.count({std::string(name), false})) << name;
    }
}

TEST(ChatTemplate, RecognisedFromGgufMetadata) {
    const gguf::File qwen = gguf::File::open(shared_dir() / "models/vocab/ggml-vocab-qwen2.5.gguf");
    const Tokenizer qt = Tokenizer::from_gguf(qwen);
    EXPECT_EQ(ChatTemplate::for_tokenizer(qt).name(), "qwen2.5");

    const gguf::File phi = gguf::File::open(shared_dir() / "models/vocab/ggml-vocab-phi-3.gguf");
    const Tokenizer pt = Tokenizer::from_gguf(phi);
    const ChatTemplate t = ChatTemplate::for_tokenizer(pt);
    EXPECT_EQ(t.name(), "phi-3");
    // bos/eos texts come from the vocabulary.
    const std::vector<ChatMessage> msgs = {{"user", "hi"}};
    EXPECT_EQ(t.apply(msgs, true), "<s><|user|>\nhi<|end|>\n<|assistant|>\n");
    EXPECT_EQ(ChatTemplate::for_tokenizer(pt, "phi-3.5").apply(msgs, false), "<|user|>\nhi<|end|>\n<|endoftext|>");
}

TEST(ChatTemplate, ModelWithoutTemplateNeedsOverride) {
    const gguf::File f = gguf::File::open(shared_dir() / "models/vocab/ggml-vocab-llama-spm.gguf");
    const Tokenizer t = Tokenizer::from_gguf(f);
    try {
        (void)ChatTemplate::for_tokenizer(t);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::ChatTemplate);
        EXPECT_NE(std::string(e.what()).find("no tokenizer.chat_template"), std::string::npos) << e.what();
    }
    EXPECT_EQ(ChatTemplate::for_tokenizer(t, "qwen2.5").name(), "qwen2.5");
}

TEST(ChatTemplate, UnrecognisedTemplateErrorListsSupported) {
    try {
        (void)ChatTemplate::detect("{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}", "", "");
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::ChatTemplate);
        const std::string msg = e.what();
        EXPECT_NE(msg.find("unrecognised chat template"), std::string::npos) << msg;
        EXPECT_NE(msg.find("[INST]"), std::string::npos) << msg;
        EXPECT_NE(msg.find("qwen2.5, phi-3, phi-3.5"), std::string::npos) << msg;
    }
    try {
        (void)ChatTemplate::named("llama-2", "", "");
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::ChatTemplate);
        EXPECT_NE(std::string(e.what()).find("'llama-2'"), std::string::npos) << e.what();
    }
}

TEST(ChatTemplate, EmptyConversationIsAnError) {
    const ChatTemplate t = ChatTemplate::named("qwen2.5", "", "<|im_end|>");
    EXPECT_THROW((void)t.apply({}, true), Error);
}

}  // namespace
}  // namespace orcd::tokenizer
