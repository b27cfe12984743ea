// Every case of the shared template corpus (../shared/templates/cases.json): the render must equal the string that
// Python's jinja2, set up as transformers sets it up, produced, byte for byte; a case marked expected_error must
// fail. One test per template file, so that a failure names the file and then each failing case.
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "common/error.h"
#include "shared_files.h"
#include "template/template.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

const fs::path kDir = orcd::test::shared_path("templates");

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

const ordered_json& cases() {
    static const ordered_json c =
        fs::exists(kDir / "cases.json") ? ordered_json::parse(slurp(kDir / "cases.json")) : ordered_json::array();
    return c;
}

std::vector<std::string> template_files() {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(kDir, ec))
        if (e.path().extension() == ".jinja") names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    if (names.empty()) names.push_back("absent");
    return names;
}

// Renders one case as `orcd template` does. Returns false with the error message when the template fails.
bool render_case(const orcd::tmpl::Template& t, const ordered_json& c, std::string& out) {
    orcd::tmpl::ChatInputs in;
    in.messages = c.at("messages");
    if (c.contains("tools")) in.tools = c.at("tools");
    in.add_generation_prompt = c.at("add_generation_prompt").get<bool>();
    in.bos_token = c.at("bos_token").get<std::string>();
    in.eos_token = c.at("eos_token").get<std::string>();
    if (c.contains("extra")) in.extra = c.at("extra");
    orcd::tmpl::RenderOptions o;
    if (c.contains("date")) o.date = c.at("date").get<std::string>();
    try {
        out = orcd::tmpl::render_chat(t, in, o);
        return true;
    } catch (const orcd::Error& e) {
        out = e.what();
        return false;
    }
}

class CorpusTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CorpusTest, RendersEveryCaseAsJinja2) {
    if (GetParam() == "absent") GTEST_SKIP() << "no template corpus at " << kDir << " (../shared is absent)";
    const orcd::tmpl::Template t(slurp(kDir / GetParam()), GetParam());
    int n = 0, passed = 0;
    for (const auto& c : cases()) {
        if (c.at("template") != GetParam()) continue;
        ++n;
        std::string out;
        const bool ok = render_case(t, c, out);
        const std::string name = c.at("name").get<std::string>();
        if (c.value("expected_error", false)) {
            EXPECT_FALSE(ok) << name << ": expected an error (" << c.value("error", "") << "), rendered:\n" << out;
            if (!ok) ++passed;
        } else {
            const std::string expected = c.at("expected").get<std::string>();
            EXPECT_TRUE(ok) << name << ": " << out;
            EXPECT_EQ(out, expected) << name;
            if (ok && out == expected) ++passed;
        }
    }
    EXPECT_GT(n, 0) << "no case uses " << GetParam();
    std::printf("%s: %d/%d cases pass\n", GetParam().c_str(), passed, n);
}

INSTANTIATE_TEST_SUITE_P(Templates, CorpusTest, ::testing::ValuesIn(template_files()), [](const auto& info) {
    std::string s = info.param;
    for (char& ch : s)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    return s;
});

}  // namespace
