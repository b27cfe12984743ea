#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "gguf/file.h"
#include "gguf/writer.h"

namespace orcd::gguf {
namespace {

std::vector<std::byte> bytes_of(const void* p, size_t n) {
    std::vector<std::byte> v(n);
    std::memcpy(v.data(), p, n);
    return v;
}

// A writer holding every metadata value type and a tensor of every tensor type (random-looking bytes are fine: the
// format does not constrain tensor contents).
Writer full_writer(uint64_t alignment) {
    Writer w(alignment);
    w.set_u8("u8", 7);
    w.set_i8("i8", -7);
    w.set_u16("u16", 65535);
    w.set_i16("i16", -32768);
    w.set_u32("u32", 123456);
    w.set_i32("i32", -123456);
    w.set_u64("u64", ~0ull);
    w.set_i64("i64", -1);
    w.set_f32("f32", 3.25f);
    w.set_f64("f64", 1e300);
    w.set_bool("bool", true);
    w.set_string("string", "héllo\nworld");
    w.set_strings("strings", {"", "a", "ΩΩ"});
    w.set_f32s("f32s", {1.0f, -2.0f});
    w.set_i32s("i32s", {-1, 0, 1});
    w.set_u32s("u32s", {});
    OwnedValue nested;
    nested.type = ValueType::Array;
    nested.elem_type = ValueType::Array;
    nested.count = 1;
    OwnedValue inner;
    inner.type = ValueType::Array;
    inner.elem_type = ValueType::U16;
    inner.count = 2;
    const uint16_t inner_values[2] = {1, 2};
    inner.raw = bytes_of(inner_values, 4);
    nested.arrays.push_back(inner);
    w.set("nested", nested);
    uint8_t fill = 1;
    for (TensorType t : {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q4_0, TensorType::Q4_1,
                         TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0, TensorType::Q8_1, TensorType::Q2_K,
                         TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::Q8_K}) {
        const uint64_t row = traits(t).block_elems == 1 ? 8 : traits(t).block_elems;
        std::vector<std::byte> data(row_bytes(t, row) * 3);
        for (auto& b : data) b = static_cast<std::byte>(fill++ * 31);
        w.add_tensor(std::string("t.") + std::string(type_name(t)), t, {row, 3}, std::move(data));
    }
    return w;
}

TEST(GgufWriter, EverythingReadsBack) {
    for (uint64_t alignment : {32ull, 64ull, 1ull}) {
        SCOPED_TRACE(alignment);
        const Writer w = full_writer(alignment);
        const std::vector<std::byte> b = w.to_bytes();
        const File f = File::parse(std::span<const std::byte>(b), "w.gguf");
        EXPECT_EQ(f.version(), 3u);
        EXPECT_EQ(f.alignment(), alignment);
        EXPECT_EQ(f.get_uint("u8"), 7u);
        EXPECT_EQ(f.get_int("i8"), -7);
        EXPECT_EQ(f.get_uint("u16"), 65535u);
        EXPECT_EQ(f.get_int("i16"), -32768);
        EXPECT_EQ(f.get_int("i32"), -123456);
        EXPECT_EQ(f.get_uint("u64"), ~0ull);
        EXPECT_EQ(f.get_int("i64"), -1);
        EXPECT_EQ(f.get_float("f32"), 3.25);
        EXPECT_EQ(f.get_float("f64"), 1e300);
        EXPECT_TRUE(f.get_bool("bool"));
        EXPECT_EQ(f.get_string("string"), "héllo\nworld");
        EXPECT_EQ(f.get_array("strings").strings[2], "ΩΩ");
        EXPECT_EQ(f.get_array("i32s").to_i32(), (std::vector<int32_t>{-1, 0, 1}));
        EXPECT_EQ(f.get_array("u32s").size, 0u);
        EXPECT_EQ(f.get_array("nested").arrays.at(0).int_at(1), 2);
        ASSERT_EQ(f.tensors().size(), 15u);
        for (const TensorInfo& t : f.tensors()) {
            EXPECT_EQ(t.file_offset % alignment, 0u) << t.name;
            EXPECT_EQ(t.shape[1], 3u);
            EXPECT_EQ(t.n_bytes, row_bytes(t.type, t.shape[0]) * 3);
        }
        EXPECT_EQ(f.data_offset(), w.data_offset());
    }
}

TEST(GgufWriter, RoundTripIsByteForByte) {
    const std::vector<std::byte> first = full_writer(32).to_bytes();
    const File f = File::parse(std::span<const std::byte>(first), "first.gguf");
    Writer again(f.alignment());
    copy_metadata(f, again);
    for (const TensorInfo& t : f.tensors()) {
        const auto d = f.tensor_data(t);
        again.add_tensor(std::string(t.name), t.type, t.shape, std::vector<std::byte>(d.begin(), d.end()));
    }
    EXPECT_EQ(again.to_bytes(), first);
}

TEST(GgufWriter, FileAndMemoryAgreeAndFillRunsInParallel) {
    Writer w;
    w.set_string("general.architecture", "llama");
    for (int i = 0; i < 16; ++i) {
        std::string name = "t";  // built in two steps: GCC 12 warns falsely (-Wrestrict) on "t" + to_string(i)
        name += std::to_string(i);
        w.add_tensor(name, TensorType::F32, {100, static_cast<uint64_t>(i + 1)}, [i](std::span<std::byte> out) {
            for (size_t k = 0; k < out.size(); ++k) out[k] = static_cast<std::byte>(k * 7 + i);
        });
    }
    const auto path = std::filesystem::temp_directory_path() / ("orcd_writer_" + std::to_string(::getpid()) + ".gguf");
    w.write_file(path, 4);
    std::ifstream in(path, std::ios::binary);
    std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::vector<std::byte> mem = w.to_bytes();
    ASSERT_EQ(c.size(), mem.size());
    EXPECT_EQ(std::memcmp(c.data(), mem.data(), c.size()), 0);
    const File f = File::open(path);
    EXPECT_EQ(f.tensors().size(), 16u);
    EXPECT_EQ(static_cast<uint8_t>(f.tensor_data(*f.find_tensor("t3"))[5]), static_cast<uint8_t>(5 * 7 + 3));
    std::filesystem::remove(path);
}

TEST(GgufWriter, FailedFillLeavesNoFile) {
    Writer w;
    w.add_tensor("t", TensorType::F32, {8}, [](std::span<std::byte>) { throw Error(ErrorCode::Internal, "boom"); });
    const auto path = std::filesystem::temp_directory_path() / ("orcd_fail_" + std::to_string(::getpid()) + ".gguf");
    EXPECT_THROW(w.write_file(path), Error);
    EXPECT_FALSE(std::filesystem::exists(path));
    try {
        w.write_file("/nonexistent-dir/x.gguf");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::Io);
        EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x.gguf"), std::string::npos);
    }
}

TEST(GgufWriter, RejectsInvalidTensors) {
    Writer w;
    EXPECT_THROW(w.add_tensor("bad", TensorType::Q4_K, {100}, std::vector<std::byte>{}), Error);  // 100 % 256 != 0
    EXPECT_THROW(w.add_tensor("bad", TensorType::F32, {4}, std::vector<std::byte>(3)), Error);    // wrong byte count
    EXPECT_THROW(Writer(24), Error);                                                              // not a power of two
}

}  // namespace
}  // namespace orcd::gguf
