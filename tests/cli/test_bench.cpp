// `orcd bench` as a user runs it, on the CPU backend with a tiny synth model: the JSON object and its fields, numbers
// that agree with each other and with the file (bytes per decoded token from the GGUF tensor table, read here), the
// human table, and the argument errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "gguf/file.h"
#include "run.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
const std::string kOrcd = ORCD_BINARY;

class BenchCli : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        model_ = new fs::path(fs::temp_directory_path() / ("orcd_bench_" + std::to_string(::getpid()) + ".gguf"));
        const auto r = orcd::test::run(kOrcd + " synth --preset qwen2.5-tiny --type Q8_0 --n-vocab 1000 --seed 5 -o '" +
                                       model_->string() + "' 2>&1");
        ASSERT_EQ(r.exit_code, 0) << r.out;
    }
    static void TearDownTestSuite() {
        fs::remove(*model_);
        delete model_;
    }
    static std::string bench(const std::string& args) {
        return kOrcd + " bench -m '" + model_->string() + "' --device cpu -t 2 " + args;
    }
    static fs::path* model_;
};
fs::path* BenchCli::model_ = nullptr;

TEST_F(BenchCli, JsonHasEveryNumberAndTheyAgree) {
    const auto r = orcd::test::run(bench("-p 16 -n 8 -d 8 -r 2 --json"));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const json j = json::parse(r.out);
    EXPECT_EQ(j["arch"], "qwen2");
    EXPECT_EQ(j["device"], "cpu");
    EXPECT_EQ(j["type"]["kind"], "Q8_0");
    EXPECT_TRUE(j["type"]["bytes_by_type"].contains("Q8_0"));
    EXPECT_EQ(j["shape"]["n_layers"], 2);
    EXPECT_EQ(j["shape"]["n_vocab"], 1000);
    EXPECT_EQ(j["n_prompt"], 16);
    EXPECT_EQ(j["n_gen"], 8);
    EXPECT_EQ(j["depth"], 8);
    EXPECT_EQ(j["tg_depth"], 24);
    EXPECT_EQ(j["reps"], 2);
    EXPECT_EQ(j["n_ctx"], 32);
    EXPECT_GT(j["load_s"].get<double>(), 0.0);
    for (const char* t : {"pp", "tg"}) {
        SCOPED_TRACE(t);
        const json& s = j[t];
        ASSERT_EQ(s["samples"].size(), 2u);
        double lo = 1e300, hi = 0;
        for (double v : s["samples"]) {
            EXPECT_GT(v, 0.0);
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
        EXPECT_GE(s["tokens_per_s_mean"].get<double>(), lo);
        EXPECT_LE(s["tokens_per_s_mean"].get<double>(), hi);
        EXPECT_GE(s["tokens_per_s_stddev"].get<double>(), 0.0);
    }
    // The CPU backend holds no device memory.
    EXPECT_EQ(j["vram"]["total"], 0);
    EXPECT_EQ(j["vram"]["weights"], 0);

    // Bytes per decoded token, from the file: every tensor but token_embd, one embedding row, and (no output.weight:
    // the head is tied) the embedding table once more as the LM head.
    const orcd::gguf::File f = orcd::gguf::File::open(*model_);
    uint64_t weights = 0, embd_bytes = 0, embd_rows = 0;
    for (const orcd::gguf::TensorInfo& t : f.tensors()) {
        if (t.name == "token_embd.weight") {
            embd_bytes = t.n_bytes;
            embd_rows = t.rows();
        } else {
            weights += t.n_bytes;
        }
    }
    ASSERT_EQ(f.find_tensor("output.weight"), nullptr);
    weights += embd_bytes / embd_rows + embd_bytes;
    EXPECT_EQ(j["decode_bytes_per_token"]["weights"], weights);
    // KV (f16): 2 (K, V) x 2 layers x kv_dim (2 heads x 64) x 2 bytes per attended position; the 8 decode steps sit
    // at positions 24..31, attending to 25..32 positions: 28.5 on average.
    const double kv = 2.0 * 2 * 128 * 2 * 28.5;
    EXPECT_DOUBLE_EQ(j["decode_bytes_per_token"]["kv_cache"].get<double>(), kv);
    EXPECT_DOUBLE_EQ(j["decode_bytes_per_token"]["total"].get<double>(), weights + kv);
    EXPECT_NEAR(j["effective_bandwidth_gbps"].get<double>(),
                (weights + kv) * j["tg"]["tokens_per_s_mean"].get<double>() / 1e9, 1e-9);
    EXPECT_EQ(j["copy_bandwidth"]["kind"], "memcpy");
    EXPECT_GT(j["copy_bandwidth"]["gbps"].get<double>(), 0.0);
    EXPECT_NEAR(j["effective_fraction_of_copy"].get<double>(),
                j["effective_bandwidth_gbps"].get<double>() / j["copy_bandwidth"]["gbps"].get<double>(), 1e-9);
}

TEST_F(BenchCli, TableAndTgOnly) {
    auto r = orcd::test::run(bench("-p 8 -n 4 -r 1"));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("| pp8 @ d0 "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("| tg4 @ d8 "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("load "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("GB/s effective"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("memcpy bandwidth"), std::string::npos) << r.out;

    r = orcd::test::run(bench("-p 0 -n 4 -d 6 -r 1 --json"));  // llama-bench's tg at depth
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const json j = json::parse(r.out);
    EXPECT_FALSE(j.contains("pp"));
    EXPECT_EQ(j["tg"]["samples"].size(), 1u);
    EXPECT_EQ(j["tg_depth"], 6);
}

TEST_F(BenchCli, RejectsBadArguments) {
    struct Case {
        std::string args, says;
    };
    for (const Case& c : {Case{"-p 2000 -n 49",
                               "-d 0 + -p 2000 + -n 49 = 2049 tokens exceeds the model's context "
                               "length of 2048"},
                          Case{"-d 2048 -p 1 -n 1", "= 2050 tokens exceeds"},
                          Case{"-r 0", "-r 0: expected at least 1 repetition"}, Case{"-p 0 -n 0", "nothing to measure"},
                          Case{"--gpu 1", "--gpu 1: a GPU index applies to --device cuda, not --device cpu"},
                          Case{"--gpu -1", "--gpu -1: expected a GPU index >= 0"}}) {
        SCOPED_TRACE(c.args);
        const auto r = orcd::test::run(bench(c.args + " 2>&1"));
        EXPECT_EQ(r.exit_code, 1) << r.out;
        EXPECT_NE(r.out.find("INVALID_ARGUMENT"), std::string::npos) << r.out;
        EXPECT_NE(r.out.find(c.says), std::string::npos) << r.out;
    }
    auto r = orcd::test::run(kOrcd + " bench -m '" + model_->string() + "' --device tpu 2>&1");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("unknown device 'tpu'"), std::string::npos) << r.out;
    r = orcd::test::run(kOrcd + " bench -m /no/such.gguf --device cpu 2>&1");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("FILE_NOT_FOUND"), std::string::npos) << r.out;
}

}  // namespace
