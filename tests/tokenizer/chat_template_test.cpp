// The chat façade over the template engine: jinja2's renders of real templates (fixtures written by
// tests/reference/render_chat_templates.py; the full corpus is tests/template), the model's own template from GGUF
// metadata, a template file instead of it, and the errors.
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
    ORCD_SKIP_WITHOUT_SHARED(shared_dir());
    const auto doc = load_fixtures();
    const auto& cases = doc.at("cases");
    ASSERT_GE(cases.size(), 30u);
    size_t checked = 0;
    for (const auto& c : cases) {
        const std::string source = read_file(shared_dir() / "templates" / c.at("template_file").get<std::string>());
        const ChatTemplate t = ChatTemplate::from_text(source, c.at("bos_token"), c.at("eos_token"));
        std::vector<ChatMessage> messages;
        for (const auto& m : c.at("messages")) messages.push_back({m.at("role"), m.at("content")});
        const std::string got = t.apply(messages, c.at("add_generation_prompt").get<bool>());
        EXPECT_EQ(got, c.at("expected").get<std::string>())
            << c.at("template") << " / " << c.at("conversation")
            << " / add_generation_prompt=" << c.at("add_generation_prompt");
        ++checked;
    }
    std::printf("chat templates: %zu fixtures checked\n", checked);
}

TEST(ChatTemplate, TheModelsOwnTemplateFromGgufMetadata) {
    ORCD_SKIP_WITHOUT_SHARED(shared_dir());
    const gguf::File phi = gguf::File::open(shared_dir() / "models/vocab/ggml-vocab-phi-3.gguf");
    const Tokenizer pt = Tokenizer::from_gguf(phi);
    const ChatTemplate t = ChatTemplate::for_tokenizer(pt);
    // bos/eos texts come from the vocabulary.
    const std::vector<ChatMessage> msgs = {{"user", "hi"}};
    EXPECT_EQ(t.apply(msgs, true), "<s><|user|>\nhi<|end|>\n<|assistant|>\n");
    // A template file replaces it.
    const auto file = shared_dir() / "templates/phi-3.5-mini-instruct.jinja";
    EXPECT_EQ(ChatTemplate::for_tokenizer(pt, file.string()).apply(msgs, false), "<|user|>\nhi<|end|>\n<|endoftext|>");
}

TEST(ChatTemplate, ModelWithoutTemplateNeedsATemplateFile) {
    ORCD_SKIP_WITHOUT_SHARED(shared_dir());
    const gguf::File f = gguf::File::open(shared_dir() / "models/vocab/ggml-vocab-llama-spm.gguf");
    const Tokenizer t = Tokenizer::from_gguf(f);
    try {
        (void)ChatTemplate::for_tokenizer(t);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::ChatTemplate);
        EXPECT_NE(std::string(e.what()).find("no tokenizer.chat_template"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("--chat-template-file"), std::string::npos) << e.what();
    }
    const auto file = shared_dir() / "templates/chatml.jinja";
    const std::vector<ChatMessage> msgs = {{"user", "hi"}};
    EXPECT_EQ(ChatTemplate::for_tokenizer(t, file.string()).apply(msgs, false), "<|im_start|>user\nhi<|im_end|>\n");
    EXPECT_THROW((void)ChatTemplate::for_tokenizer(t, "/nonexistent/template.jinja"), Error);
}

TEST(ChatTemplate, AnyTemplateTextRendersAndSyntaxErrorsAreReported) {
    const ChatTemplate t =
        ChatTemplate::from_text("{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}", "", "");
    const std::vector<ChatMessage> msgs = {{"user", "x"}};
    EXPECT_EQ(t.apply(msgs, true), "[INST] x [/INST]");
    try {
        (void)ChatTemplate::from_text("{% if %}", "", "", "bad.jinja");
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::ChatTemplate);
        EXPECT_NE(std::string(e.what()).find("bad.jinja line 1"), std::string::npos) << e.what();
    }
}

TEST(ChatTemplate, ExtraMessageMembersAndToolsReachTheTemplate) {
    const ChatTemplate t = ChatTemplate::from_text(
        "{% for m in messages %}{{ m.role }}:{{ m.tool_calls | tojson }};{% endfor %}{{ tools | length }}", "", "");
    ChatMessage m{"assistant", ""};
    m.extra = {{"tool_calls", nlohmann::ordered_json::array({{{"name", "f"}}})}};
    const std::vector<ChatMessage> msgs = {m};
    EXPECT_EQ(t.apply(msgs, false, nlohmann::ordered_json::array({1, 2})), "assistant:[{\"name\": \"f\"}];2");
}

TEST(ChatTemplate, EmptyConversationIsAnError) {
    const ChatTemplate t = ChatTemplate::from_text("x", "", "<|im_end|>");
    EXPECT_THROW((void)t.apply({}, true), Error);
}

}  // namespace
}  // namespace orcd::tokenizer
