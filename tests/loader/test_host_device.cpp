// What only the host device can show: its own capacity and bookkeeping, and the stream's real asynchrony.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>

#include "common/error.h"
#include "device/host_device.h"
#include "loader/loader.h"
#include "test_models.h"

namespace orcd::loader {
namespace {

TEST(HostDevice, CapacityBoundsAllocationsAndInfo) {
    device::HostDeviceOptions o;
    o.capacity = 10000;
    o.name = "tiny";
    device::HostDevice d(o);
    EXPECT_EQ(d.info().free_bytes, 10000u);
    EXPECT_EQ(d.info().kind, "host");
    {
        auto a = d.allocate(6000, "a");
        EXPECT_EQ(reinterpret_cast<uintptr_t>(a->data()) % 256, 0u);
        EXPECT_EQ(d.info().free_bytes, 4000u);
        try {
            (void)d.allocate(4001, "b");
            FAIL() << "no error";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), ErrorCode::DeviceAlloc);
            EXPECT_NE(std::string(e.what()).find("allocation of 4001 bytes for b failed: 4000 of 10000 bytes free"),
                      std::string::npos)
                << e.what();
        }
        EXPECT_TRUE(d.residency(a->data() + 5999).ok());
        EXPECT_FALSE(d.residency(a->data() + 6000).device_memory);
        EXPECT_EQ(d.counters().live_allocs, 1u);
        EXPECT_EQ(d.counters().peak_bytes, 6000u);
    }
    EXPECT_TRUE(d.counters().all_released());
    EXPECT_EQ(d.info().free_bytes, 10000u);
}

TEST(HostDevice, CopiesRunInOrderAfterTheCallReturns) {
    device::HostDeviceOptions o;
    o.copy_delay_us = 20000;
    device::HostDevice d(o);
    auto mem = d.allocate(64, "x");
    auto ev = d.create_event();
    std::vector<std::byte> a(64, std::byte{1}), b(64, std::byte{2});
    {
        auto s = d.create_stream();
        const auto t0 = std::chrono::steady_clock::now();
        s->copy_to_device(mem->data(), a.data(), 64);
        s->copy_to_device(mem->data(), b.data(), 64);
        s->record(*ev);
        const auto queued = std::chrono::steady_clock::now();
        ev->synchronize();
        const auto done = std::chrono::steady_clock::now();
        // Each copy sleeps 20 ms on the stream's thread: queueing returns at once, the event waits for both.
        EXPECT_LT(queued - t0, std::chrono::milliseconds(20));
        EXPECT_GE(done - t0, std::chrono::milliseconds(40));
        EXPECT_EQ(mem->data()[0], std::byte{2});  // the later copy wins: in-order execution
    }
    EXPECT_EQ(d.counters().copies, 2u);
}

TEST(HostDevice, StreamDestructorWaitsForQueuedCopies) {
    device::HostDeviceOptions o;
    o.copy_delay_us = 3000;
    device::HostDevice d(o);
    auto mem = d.allocate(16, "x");
    std::vector<std::byte> src(16, std::byte{9});
    {
        auto s = d.create_stream();
        s->copy_to_device(mem->data(), src.data(), 16);
    }
    EXPECT_EQ(mem->data()[15], std::byte{9});
}

TEST(HostDevice, CopyOutsideAnAllocationIsATransferError) {
    device::HostDevice d;
    auto mem = d.allocate(16, "x");
    std::vector<std::byte> src(32);
    auto s = d.create_stream();
    try {
        s->copy_to_device(mem->data(), src.data(), 32);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::Transfer);
        EXPECT_NE(std::string(e.what()).find("outside every live allocation"), std::string::npos) << e.what();
    }
}

TEST(HostDevice, CapacityBelowThePlanIsInsufficientVramBeforeAnyAllocation) {
    testing::TempDir dir;
    const auto path = testing::write_tiny(testing::tiny_phi3(), dir / "phi3.gguf");
    device::HostDeviceOptions o;
    o.capacity = 100000;
    o.name = "small-host";
    auto dev = std::make_shared<device::HostDevice>(o);
    try {
        (void)load_model(path, dev, {});
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::InsufficientVram);
        EXPECT_NE(std::string(e.what()).find("device 0 (small-host) has 100000 bytes"), std::string::npos) << e.what();
    }
    EXPECT_EQ(dev->counters().allocs_total, 0u);
    EXPECT_FALSE(testing::is_mapped(path));
}

TEST(HostDevice, LoadWithoutRuntimeReservationAllocatesWeightsOnly) {
    testing::TempDir dir;
    const auto path = testing::write_tiny(testing::tiny_llama(), dir / "llama.gguf");
    auto dev = std::make_shared<device::HostDevice>();
    LoadOptions o;
    o.reserve_runtime = false;
    LoadedModel m = load_model(path, dev, o);
    EXPECT_EQ(dev->counters().live_allocs, 1u);
    EXPECT_EQ(dev->counters().live_bytes, m.plan().weight_bytes);
    EXPECT_EQ(m.breakdown().kv_cache, 0u);
    EXPECT_EQ(m.kv_cache(), nullptr);
    // transfer resources are gone once the load returns; only the arena stays
    EXPECT_EQ(dev->counters().live_pinned, 0u);
    EXPECT_EQ(dev->counters().live_streams, 0u);
    EXPECT_EQ(dev->counters().live_events, 0u);
}

TEST(HostDevice, StagingNeverExceedsTheModel) {
    testing::TempDir dir;
    const auto path = testing::write_tiny(testing::tiny_llama(), dir / "llama.gguf");
    auto dev = std::make_shared<device::HostDevice>();
    LoadedModel m = load_model(path, dev, {});  // default 256 MiB chunks for a model of ~0.5 MB
    EXPECT_EQ(m.transfer_stats().chunks, 1u);
    EXPECT_EQ(m.transfer_stats().n_buffers, 1u);
    EXPECT_EQ(m.transfer_stats().staging_bytes, m.plan().weight_bytes);
}

TEST(HostDevice, TransferredPagesAreDroppedFromTheMapping) {
    testing::TempDir dir;
    testing::TinyModel t = testing::tiny_llama();
    t.n_embd = 256;  // ~4 MiB of tensors: far more pages than the header and chunk-boundary pages kept
    t.n_ff = 1024;
    const auto path = testing::write_tiny(t, dir / "llama.gguf");
    auto dev = std::make_shared<device::HostDevice>();
    // Gathering from the mapping maps every page (kept unless released); reading the file maps none.
    for (auto [gather, release] : {std::pair{GatherSource::Mapping, false}, std::pair{GatherSource::Mapping, true},
                                   std::pair{GatherSource::Read, false}, std::pair{GatherSource::Read, true}}) {
        SCOPED_TRACE(std::string(gather_source_name(gather)) + (release ? " release" : " keep"));
        LoadOptions o;
        o.transfer.chunk_bytes = 64 << 10;
        o.transfer.release_pages = release;
        o.transfer.gather = gather;
        LoadedModel m = load_model(path, dev, o);
        EXPECT_EQ(m.transfer_stats().gather, gather) << m.transfer_stats().gather_note;
        const uint64_t rss = testing::mapped_rss_bytes(path);
        if (release || gather == GatherSource::Read) {
            // what may stay: the header page(s) (with the pages the kernel maps around a fault, 64 KiB) and a page
            // straddling the end of the last tensor
            EXPECT_LE(rss, 64u << 10) << "of " << m.plan().tensor_bytes << " bytes of tensors";
        } else {
            EXPECT_GE(rss, m.plan().tensor_bytes * 9 / 10);
        }
    }
}

TEST(HostDevice, InvalidTransferOptions) {
    testing::TempDir dir;
    const auto path = testing::write_tiny(testing::tiny_llama(), dir / "llama.gguf");
    auto dev = std::make_shared<device::HostDevice>();
    LoadOptions o;
    o.transfer.chunk_bytes = 1000;
    try {
        (void)load_model(path, dev, o);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
        EXPECT_NE(std::string(e.what()).find("chunk size 1000 bytes is below the minimum 4096"), std::string::npos);
    }
    EXPECT_TRUE(dev->counters().all_released());
}

}  // namespace
}  // namespace orcd::loader
