// The schema corpus (tests/grammar/schemas/*.json) through the grammar engine: every schema compiles, and the grammar
// accepts each "valid" instance (written compactly, properties in the order the grammar produces them) and rejects
// each "invalid" one. check_schema_cases.py confirms the same lists with python3-jsonschema.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "grammar/json_schema.h"
#include "grammar/matcher.h"

using namespace orcd::grammar;

TEST(SchemaCorpus, CompilesAndMatchesTheReferenceCases) {
    const std::filesystem::path dir = std::filesystem::path(ORCD_SOURCE_DIR) / "tests/grammar/schemas";
    size_t n_files = 0, n_cases = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        if (entry.path().extension() != ".json") continue;
        ++n_files;
        std::ifstream in(entry.path());
        std::stringstream ss;
        ss << in.rdbuf();
        const auto doc = nlohmann::ordered_json::parse(ss.str());
        const std::string name = entry.path().filename().string();
        std::shared_ptr<const Grammar> g;
        try {
            g = std::make_shared<const Grammar>(compile_json_schema(doc["schema"].dump()));
        } catch (const std::exception& e) {
            ADD_FAILURE() << name << ": " << e.what();
            continue;
        }
        for (const auto& v : doc["valid"]) {
            EXPECT_TRUE(matches(g, v.dump())) << name << " should accept " << v.dump();
            ++n_cases;
        }
        for (const auto& v : doc["invalid"]) {
            EXPECT_FALSE(matches(g, v.dump())) << name << " should reject " << v.dump();
            ++n_cases;
        }
    }
    EXPECT_GE(n_files, 50u);
    EXPECT_GT(n_cases, 200u);
}
