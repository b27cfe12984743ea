// A corruption corpus made in the test: every truncation point of a small file, truncations of real files at each
// section boundary and at random points, bit flips in every length, count, type and offset field, and targeted
// hostile values. Each case must end in a typed orcd::Error (or, for a flip that happens to leave the file valid, a
// clean parse) — never a crash, another exception type, or (under ASan/UBSan) undefined behaviour.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "gguf/file.h"
#include "gguf_bytes.h"
#include "shared_files.h"

namespace orcd::gguf {
namespace {

using Bytes = std::vector<std::byte>;

// Returns the error code, or Ok for a clean parse. Any exception other than orcd::Error fails the test.
ErrorCode parse_code(const Bytes& b) {
    try {
        File f = File::parse(std::span<const std::byte>(b), "corrupt.gguf");
        // A file that parses must be usable: touch every tensor's data and every string.
        for (const TensorInfo& t : f.tensors()) {
            const auto d = f.tensor_data(t);
            if (!d.empty()) (void)d.back();
        }
        return ErrorCode::Ok;
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("corrupt.gguf"), std::string::npos)
            << "message must name the file: " << e.what();
        EXPECT_NE(std::string(e.what()).find("byte"), std::string::npos)
            << "message must name the offset: " << e.what();
        return e.code();
    }
}

Bytes read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Bytes b(c.size());
    std::memcpy(b.data(), c.data(), c.size());
    return b;
}

TEST(GgufCorruption, EveryTruncationOfASmallFileIsAnError) {
    const auto f = test::small_valid_file();
    ASSERT_EQ(parse_code(f.bytes), ErrorCode::Ok);
    for (size_t n = 0; n < f.bytes.size(); ++n) {
        Bytes cut(f.bytes.begin(), f.bytes.begin() + static_cast<long>(n));
        const ErrorCode c = parse_code(cut);
        EXPECT_TRUE(c == ErrorCode::Truncated || c == ErrorCode::CorruptFile)
            << "truncated to " << n << " bytes gave " << error_code_name(c);
    }
}

TEST(GgufCorruption, TruncatedRealFilesAtBoundariesAndRandomPoints) {
    const auto path = test::shared_path("models/vocab/ggml-vocab-phi-3.gguf");
    ORCD_SKIP_WITHOUT_SHARED(path);
    const Bytes full = read_file(path);
    const File f = File::parse(std::span<const std::byte>(full), "phi3");
    std::set<size_t> cuts = {0, 3, 4, 7, 8, 15, 16, 23, 24};
    for (const KeyValue& kv : f.metadata()) {  // each key's record start, and a byte into it
        cuts.insert(kv.offset);
        cuts.insert(kv.offset + 9);
    }
    std::mt19937_64 rng(1234);
    for (int i = 0; i < 200; ++i) cuts.insert(rng() % full.size());
    for (size_t n : cuts) {
        if (n >= full.size()) continue;
        Bytes cut(full.begin(), full.begin() + static_cast<long>(n));
        const ErrorCode c = parse_code(cut);
        EXPECT_TRUE(c == ErrorCode::Truncated || c == ErrorCode::CorruptFile)
            << "cut at " << n << " gave " << error_code_name(c);
    }
}

TEST(GgufCorruption, BitFlipsInEveryStructuralField) {
    const auto f = test::small_valid_file();
    int errors = 0, clean = 0;
    for (const auto& [label, pos] : f.at) {
        if (label == "data" || label.ends_with(".data")) continue;
        const size_t width = (label.ends_with("type") || label.ends_with("ndims") || label == "magic" ||
                              label == "version" || label.ends_with(".value"))
                                 ? 4
                                 : 8;
        for (size_t bit = 0; bit < width * 8; ++bit) {
            Bytes b = f.bytes;
            b[pos + bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
            (parse_code(b) == ErrorCode::Ok ? clean : errors)++;
        }
    }
    // Most flips must be caught; the few that survive change a value without breaking structure.
    EXPECT_GT(errors, 10 * clean) << errors << " errors, " << clean << " clean parses";
}

TEST(GgufCorruption, RandomByteCorruptionNeverCrashes) {
    const auto f = test::small_valid_file();
    std::mt19937_64 rng(99);
    for (int i = 0; i < 5000; ++i) {
        Bytes b = f.bytes;
        const int n = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < n; ++k) b[rng() % b.size()] = static_cast<std::byte>(rng());
        parse_code(b);
    }
}

struct Case {
    const char* name;
    void (*mutate)(test::GgufBytes&);
    ErrorCode expected;
};

TEST(GgufCorruption, HostileValuesGetSpecificErrors) {
    const Case cases[] = {
        {"bad magic", [](test::GgufBytes& b) { b.set_u32("magic", 0x46554746); }, ErrorCode::NotGguf},
        {"version 1", [](test::GgufBytes& b) { b.set_u32("version", 1); }, ErrorCode::UnsupportedVersion},
        {"version 4", [](test::GgufBytes& b) { b.set_u32("version", 4); }, ErrorCode::UnsupportedVersion},
        {"big-endian version", [](test::GgufBytes& b) { b.set_u32("version", 0x03000000); },
         ErrorCode::UnsupportedVersion},
        {"huge tensor count", [](test::GgufBytes& b) { b.set_u64("tensor_count", 1ull << 40); },
         ErrorCode::CorruptFile},
        {"huge kv count", [](test::GgufBytes& b) { b.set_u64("kv_count", ~0ull); }, ErrorCode::CorruptFile},
        {"huge key length", [](test::GgufBytes& b) { b.set_u64("kv0.keylen", 1ull << 20); }, ErrorCode::CorruptFile},
        {"key past end", [](test::GgufBytes& b) { b.set_u64("kv0.keylen", 60000); }, ErrorCode::Truncated},
        {"huge string", [](test::GgufBytes& b) { b.set_u64("kv0.strlen", ~0ull - 4); }, ErrorCode::Truncated},
        {"unknown value type", [](test::GgufBytes& b) { b.set_u32("kv1.type", 13); }, ErrorCode::CorruptFile},
        {"unknown array element type", [](test::GgufBytes& b) { b.set_u32("kv2.elemtype", 77); },
         ErrorCode::CorruptFile},
        {"array count overflow", [](test::GgufBytes& b) { b.set_u64("kv2.count", 1ull << 62); },
         ErrorCode::CorruptFile},
        {"string array count", [](test::GgufBytes& b) { b.set_u64("kv3.count", 1ull << 61); }, ErrorCode::CorruptFile},
        {"string element past end", [](test::GgufBytes& b) { b.set_u64("kv3.s1len", 1ull << 33); },
         ErrorCode::Truncated},
        {"n_dims 0", [](test::GgufBytes& b) { b.set_u32("t0.ndims", 0); }, ErrorCode::CorruptFile},
        {"n_dims 5", [](test::GgufBytes& b) { b.set_u32("t0.ndims", 5); }, ErrorCode::CorruptFile},
        {"dim 0", [](test::GgufBytes& b) { b.set_u64("t0.dim1", 0); }, ErrorCode::CorruptFile},
        {"element overflow",
         [](test::GgufBytes& b) {
             b.set_u64("t0.dim0", 1ull << 40);
             b.set_u64("t0.dim1", 1ull << 40);
         },
         ErrorCode::CorruptFile},
        {"data past end", [](test::GgufBytes& b) { b.set_u64("t0.dim1", 1000); }, ErrorCode::Truncated},
        {"unknown tensor type", [](test::GgufBytes& b) { b.set_u32("t0.type", 99); }, ErrorCode::UnsupportedTensorType},
        {"row not a block multiple", [](test::GgufBytes& b) { b.set_u64("t1.dim0", 16); }, ErrorCode::CorruptFile},
        {"misaligned offset", [](test::GgufBytes& b) { b.set_u64("t1.offset", 33); }, ErrorCode::CorruptFile},
        {"overlapping tensors", [](test::GgufBytes& b) { b.set_u64("t1.offset", 0); }, ErrorCode::CorruptFile},
        {"offset overflow", [](test::GgufBytes& b) { b.set_u64("t1.offset", ~0ull - 31); }, ErrorCode::Truncated},
        {"tensor name too long", [](test::GgufBytes& b) { b.set_u64("t0.namelen", 65); }, ErrorCode::CorruptFile},
    };
    for (const Case& c : cases) {
        auto b = test::small_valid_file();
        c.mutate(b);
        EXPECT_EQ(parse_code(b.bytes), c.expected) << c.name;
    }
}

// A tensor type the library does not read is named as GGML names it, with what the library reads instead; an id GGML
// does not define is called unknown.
TEST(GgufCorruption, UnreadableTensorTypesAreNamed) {
    auto message = [](uint32_t type) {
        auto b = test::small_valid_file();
        b.set_u32("t0.type", type);
        try {
            (void)File::parse(std::span<const std::byte>(b.bytes), "model.gguf");
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), ErrorCode::UnsupportedTensorType);
            return std::string(e.what());
        }
        return std::string("parsed");
    };
    const std::string iq4 = message(23);
    EXPECT_NE(iq4.find("tensor type IQ4_XS (GGML id 23) is not supported"), std::string::npos) << iq4;
    EXPECT_NE(iq4.find("this version reads F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, "
                       "Q6_K, Q8_K, BF16"),
              std::string::npos)
        << iq4;
    EXPECT_NE(message(34).find("tensor type TQ1_0 (GGML id 34)"), std::string::npos);
    EXPECT_NE(message(4).find("tensor type Q4_2 (GGML id 4)"), std::string::npos);
    EXPECT_NE(message(39).find("tensor type MXFP4 (GGML id 39)"), std::string::npos);
    const std::string unknown = message(99);
    EXPECT_NE(unknown.find("unknown tensor type id 99 (not a GGML type; this version reads F32, F16,"),
              std::string::npos)
        << unknown;
    EXPECT_NE(message(40).find("unknown tensor type id 40"), std::string::npos);
}

TEST(GgufCorruption, DuplicatesAndBadBoolsAreRejected) {
    {  // duplicate key
        test::GgufBytes b;
        b.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(2);
        b.str("k").put<uint32_t>(4).put<uint32_t>(1);
        b.str("k").put<uint32_t>(4).put<uint32_t>(2);
        EXPECT_EQ(parse_code(b.bytes), ErrorCode::CorruptFile);
    }
    {  // duplicate tensor name
        test::GgufBytes b;
        b.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(2).put<uint64_t>(0);
        b.str("t").put<uint32_t>(1).put<uint64_t>(8).put<uint32_t>(0).put<uint64_t>(0);
        b.str("t").put<uint32_t>(1).put<uint64_t>(8).put<uint32_t>(0).put<uint64_t>(32);
        b.pad_to(32).zeros(64);
        EXPECT_EQ(parse_code(b.bytes), ErrorCode::CorruptFile);
    }
    {  // bool scalar of 2, bool array element of 7
        test::GgufBytes b;
        b.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1);
        b.str("flag").put<uint32_t>(7).put<uint8_t>(2);
        EXPECT_EQ(parse_code(b.bytes), ErrorCode::CorruptFile);
        test::GgufBytes a;
        a.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1);
        a.str("flags").put<uint32_t>(9).put<uint32_t>(7).put<uint64_t>(2).put<uint8_t>(1).put<uint8_t>(7);
        EXPECT_EQ(parse_code(a.bytes), ErrorCode::CorruptFile);
    }
    {  // arrays nested deeper than the limit
        test::GgufBytes b;
        b.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1);
        b.str("deep").put<uint32_t>(9);
        for (int i = 0; i < 20; ++i) b.put<uint32_t>(9).put<uint64_t>(1);
        b.put<uint32_t>(0).put<uint64_t>(0);
        EXPECT_EQ(parse_code(b.bytes), ErrorCode::CorruptFile);
    }
}

// Metadata keys and tensor names share one table reader: both duplicate errors point at the repeated record and say
// where the first one is. Offsets by hand: the header is 24 bytes (magic, version, two u64 counts); a key record "k"
// with a u32 value is 8 + 1 + 4 + 4 = 17 bytes; a 1-d tensor record "t" is 8 + 1 + 4 + 8 + 4 + 8 = 33 bytes.
TEST(GgufCorruption, DuplicateNamesSayWhereTheFirstIs) {
    const auto message = [](const Bytes& b) -> std::string {
        try {
            (void)File::parse(std::span<const std::byte>(b), "dup.gguf");
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), ErrorCode::CorruptFile);
            return e.what();
        }
        ADD_FAILURE() << "the duplicate was accepted";
        return {};
    };
    test::GgufBytes k;
    k.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(2);
    k.str("k").put<uint32_t>(4).put<uint32_t>(1);
    k.str("k").put<uint32_t>(4).put<uint32_t>(2);
    EXPECT_EQ(message(k.bytes), "dup.gguf: at byte 41: duplicate metadata key 'k' (first at byte 24)");
    test::GgufBytes t;
    t.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(2).put<uint64_t>(0);
    t.str("t").put<uint32_t>(1).put<uint64_t>(8).put<uint32_t>(0).put<uint64_t>(0);
    t.str("t").put<uint32_t>(1).put<uint64_t>(8).put<uint32_t>(0).put<uint64_t>(32);
    t.pad_to(32).zeros(64);
    EXPECT_EQ(message(t.bytes), "dup.gguf: at byte 57: duplicate tensor name 't' (first at byte 24)");
}

}  // namespace
}  // namespace orcd::gguf
