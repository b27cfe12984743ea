// The chat page compiled into the binary: each embedded file is byte-identical to its source, the page loads only its
// own files (no external asset, nothing inline that the Content-Security-Policy would have to allow), and model text
// is never written as HTML.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "server/webui/assets.h"

namespace {

using orcd::server::webui::find_asset;

std::string read_source(const std::string& name) {
    std::ifstream f(std::string(ORCD_SOURCE_DIR) + "/src/server/webui/" + name, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

TEST(WebUi, EmbeddedFilesEqualTheirSources) {
    for (const auto& [url, file] : {std::pair{"/", "index.html"},
                                    {"/webui/app.js", "app.js"},
                                    {"/webui/style.css", "style.css"},
                                    {"/webui/favicon.svg", "favicon.svg"}}) {
        const auto a = find_asset(url);
        ASSERT_TRUE(a) << url;
        EXPECT_EQ(a->body, read_source(file)) << url;
        EXPECT_NE(a->content_type.find("charset=utf-8"), std::string_view::npos);
    }
    EXPECT_FALSE(find_asset("/index.html"));
    EXPECT_FALSE(find_asset("/webui/../etc/passwd"));
}

TEST(WebUi, PageLoadsOnlyItsOwnFiles) {
    const std::string html(find_asset("/")->body);
    // Every src= and href= is a path on this server.
    const std::regex ref(R"((src|href)\s*=\s*"([^"]*)\")");
    int refs = 0;
    for (auto it = std::sregex_iterator(html.begin(), html.end(), ref); it != std::sregex_iterator(); ++it) {
        const std::string target = (*it)[2];
        EXPECT_TRUE(target.starts_with("/webui/")) << target;
        EXPECT_TRUE(find_asset(target)) << target << " is not embedded";
        ++refs;
    }
    EXPECT_EQ(refs, 3);
    // No inline script or style (the policy allows only 'self').
    EXPECT_EQ(html.find("<script>"), std::string::npos);
    EXPECT_EQ(html.find("<style"), std::string::npos);
    EXPECT_EQ(html.find(" style="), std::string::npos);
    EXPECT_FALSE(std::regex_search(html, std::regex(R"(\son[a-z]+\s*=)")));  // no inline event handlers
}

TEST(WebUi, ScriptNeverWritesHtml) {
    const std::string js(find_asset("/webui/app.js")->body);
    for (const char* sink :
         {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"}) {
        EXPECT_EQ(js.find(sink), std::string::npos) << sink;
    }
    // It talks only to its own origin: every fetch takes a path.
    const std::regex fetch_call(R"(fetch\(\s*"([^"]*)\")");
    for (auto it = std::sregex_iterator(js.begin(), js.end(), fetch_call); it != std::sregex_iterator(); ++it) {
        EXPECT_EQ(std::string((*it)[1]).front(), '/') << (*it)[1];
    }
}

}  // namespace
