#include "loader/transfer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "common/error.h"
#include "loader/copy_pool.h"

namespace orcd::loader {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Asks the kernel to start reading [p, p + n) of the mapping ahead of the gather (cold page cache); a hint only.
void prefetch(const std::byte* p, uint64_t n) {
    static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const uintptr_t a = reinterpret_cast<uintptr_t>(p) & ~(page - 1);
    const uintptr_t b = reinterpret_cast<uintptr_t>(p) + n;
    if (n > 0) (void)madvise(reinterpret_cast<void*>(a), b - a, MADV_WILLNEED);
}

// Drops already-gathered pages of the mapping (MADV_DONTNEED) on its own thread. Unmapping pages that 16 gather
// threads touched costs TLB shootdowns on every core; done inline it sat on the transfer's critical path (measured on
// the H100 machine: transfer 0.125 s against 0.074 s of gathering for the Phi-3 shape). finish() (or the destructor,
// on an error path) drains what is queued, so every transferred page is still released before the load returns.
class PageReleaser {
public:
    explicit PageReleaser(const gguf::File* file) : file_(file) {
        if (file_ != nullptr) thread_ = std::thread([this] { loop(); });
    }
    PageReleaser(const PageReleaser&) = delete;
    PageReleaser& operator=(const PageReleaser&) = delete;
    ~PageReleaser() { finish(); }

    void push(uint64_t offset, uint64_t length) {
        if (file_ == nullptr) return;
        {
            std::lock_guard lock(mutex_);
            queue_.emplace_back(offset, length);
        }
        cv_.notify_one();
    }

    void finish() {
        if (!thread_.joinable()) return;
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        cv_.notify_one();
        thread_.join();
    }

private:
    void loop() {
        std::unique_lock lock(mutex_);
        for (;;) {
            cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stop_ and nothing left
            const auto [offset, length] = queue_.front();
            queue_.pop_front();
            lock.unlock();
            file_->release_pages(offset, length);
            lock.lock();
        }
    }

    const gguf::File* file_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::pair<uint64_t, uint64_t>> queue_;
    bool stop_ = false;
    std::thread thread_;
};

// A read-only descriptor on the mapped file for GatherSource::Read, or the reason there is none (then the gather copies
// from the mapping). The File keeps no descriptor, so the path is opened again; the descriptor is trusted only when it
// shows the mapped file: same size, same header (metadata and tensor infos, up to 1 MiB), and every tensor's view
// lying at its file offset in the mapping. A file replaced by another since it was mapped fails the check (the
// mapping still shows the old one, which is what the plan was made from); one modified in place is as unsafe for the
// mapping as for the descriptor, and --verify is the tool for that.
class FileReader {
public:
    FileReader(const gguf::File* file, const model::ModelWeights& w) {
        if (file == nullptr) {
            note_ = "no file behind the weights";
            return;
        }
        for (const auto& t : w.tensors) {
            if (t.n_bytes != 0 && t.data.data() != file->bytes().data() + t.file_offset) {
                note_ = fmt::format("tensor {} is not at its file offset in the mapping", t.name);
                return;
            }
        }
        fd_ = ::open(file->path().c_str(), O_RDONLY | O_CLOEXEC);
        if (fd_ < 0) {
            note_ = fmt::format("cannot open {} again: {}", file->path(), std::strerror(errno));
            return;
        }
        struct stat st {};
        if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != file->size()) {
            fail(fmt::format("{} is not the mapped file any more (size {} bytes, mapped {})", file->path(),
                             static_cast<long long>(st.st_size), file->size()));
            return;
        }
        const uint64_t head = std::min<uint64_t>({file->data_offset(), file->size(), 1ull << 20});
        std::vector<std::byte> bytes(head);
        uint64_t got = 0;
        while (got < head) {
            const ssize_t r = ::pread(fd_, bytes.data() + got, head - got, static_cast<off_t>(got));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += static_cast<uint64_t>(r);
        }
        if (got != head || std::memcmp(bytes.data(), file->bytes().data(), head) != 0) {
            fail(fmt::format("{}: its first {} bytes differ from the mapping's (replaced since it was opened?)",
                             file->path(), head));
        }
    }
    FileReader(const FileReader&) = delete;
    FileReader& operator=(const FileReader&) = delete;
    ~FileReader() {
        if (fd_ >= 0) ::close(fd_);
    }
    int fd() const { return fd_; }
    const std::string& note() const { return note_; }

private:
    void fail(std::string why) {
        note_ = std::move(why);
        ::close(fd_);
        fd_ = -1;
    }
    int fd_ = -1;
    std::string note_;
};

struct LayerEnd {
    uint64_t end;  // arena offset one past the layer's last byte
    int32_t layer;
    std::string_view tensor;
};

class Pipeline {
public:
    Pipeline(device::Device& dev, const model::ModelWeights& w, const Plan& plan, device::DeviceMemory& arena,
             const gguf::File* file, const TransferOptions& o, const ProgressFn& progress,
             const std::atomic<bool>* cancel)
        : dev_(dev), w_(w), plan_(plan), arena_(arena), file_(file), o_(o), progress_(progress), cancel_(cancel) {}

    TransferStats run() {
        const auto t_setup = Clock::now();
        const uint64_t total = plan_.weight_bytes;
        if (o_.chunk_bytes < kMinChunkBytes) {
            throw Error(ErrorCode::InvalidArgument, fmt::format("transfer: chunk size {} bytes is below the minimum {}",
                                                                o_.chunk_bytes, kMinChunkBytes));
        }
        if (o_.n_buffers == 0) throw Error(ErrorCode::InvalidArgument, "transfer: n_buffers must be at least 1");
        if (arena_.size() < total) {
            throw Error(ErrorCode::InvalidArgument, fmt::format("transfer: arena of {} bytes is smaller than the "
                                                                "plan's {} weight bytes",
                                                                arena_.size(), total));
        }
        stats_.bytes = total;
        if (total == 0) return stats_;
        // Staging never exceeds the data: a 374 MiB model does not pin 2 x 256 MiB.
        const uint64_t stage = std::min(o_.chunk_bytes, total);
        n_chunks_ = (total + stage - 1) / stage;
        const uint32_t nb = static_cast<uint32_t>(std::min<uint64_t>(o_.n_buffers, n_chunks_));
        const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
        // The gather, not the DMA, is the slow side (see copy_pool.h): every core helps, up to 16.
        const unsigned threads = o_.copy_threads ? o_.copy_threads : std::min(16u, hw);
        stats_.staging_bytes = stage;
        stats_.n_buffers = nb;
        stats_.copy_threads = threads;
        stats_.chunks = n_chunks_;
        build_layer_ends();

        if (o_.direct) {
            const auto tr = Clock::now();
            // Declared before everything run_direct creates: unregistered only after its stream drained.
            std::unique_ptr<device::HostRegistration> reg = register_mapping();
            if (reg) {
                stats_.register_seconds = since(tr);
                stats_.direct = true;
                stats_.staging_bytes = 0;
                stats_.copy_threads = 0;
                t0_ = tr;  // the registration replaces the gather: it counts in the transfer time
                run_direct(nb);
                const auto tu = Clock::now();
                reg.reset();
                stats_.unregister_seconds = since(tu);
                stats_.seconds = since(t0_);
                if (o_.release_pages && file_ != nullptr) file_->release_pages(direct_lo_, direct_hi_ - direct_lo_);
                emit(Progress::Kind::Done, done_, last_tensor(done_));
                return stats_;
            }
        }

        // Declaration order is release order reversed: the stream (whose destructor waits for queued copies) goes
        // first, then the events, then the staging buffers, so no buffer is freed under an in-flight copy.
        std::vector<std::unique_ptr<device::PinnedMemory>> buffers(nb);
        std::vector<std::unique_ptr<device::Event>> events;
        // Buffer i first holds chunk i, the largest it will ever hold (only the last chunk is short), so a model
        // smaller than the staging does not pin more than itself.
        auto buffer_bytes = [&](uint32_t i) { return std::min(stage, total - uint64_t{i} * stage); };
        // Pinning costs tens of milliseconds per 256 MiB. Buffer 0 is pinned first, alone (the gather waits for it,
        // and the driver may serialise concurrent pinning); buffers 1..nb-1 are then pinned on helper threads, one
        // each, while the first chunks are gathered, and buffer k is waited for only when chunk k needs it. (Waiting
        // for all of them at chunk 1, as a single helper did, made 3 buffers slower than 2 on the H100 machine.) If
        // the load fails first, the futures' destructors wait and their buffers are freed.
        buffers[0] = dev_.allocate_pinned(buffer_bytes(0));
        std::vector<std::future<std::unique_ptr<device::PinnedMemory>>> more;
        for (uint32_t i = 1; i < nb; ++i) {
            more.push_back(std::async(std::launch::async,
                                      [this, i, &buffer_bytes] { return dev_.allocate_pinned(buffer_bytes(i)); }));
        }
        for (uint32_t i = 0; i < nb; ++i) events.push_back(dev_.create_event());
        std::unique_ptr<device::Stream> stream = dev_.create_stream();
        std::optional<FileReader> reader;
        if (o_.gather == GatherSource::Read) {
            reader.emplace(file_, w_);
            stats_.gather_note = reader->note();
        } else {
            stats_.gather_note = "mapping requested";
        }
        const int fd = reader ? reader->fd() : -1;
        stats_.gather = fd >= 0 ? GatherSource::Read : GatherSource::Mapping;
        stats_.streaming_stores = o_.streaming_stores;
        CopyPool pool(threads, o_.streaming_stores);
        PageReleaser releaser(o_.release_pages ? file_ : nullptr);
        releaser_ = &releaser;
        stats_.setup_seconds = since(t_setup);

        t0_ = Clock::now();
        std::vector<uint64_t> in_flight_end(nb, 0);  // 0: buffer free
        std::vector<Segment> segs;
        size_t ti = 0;  // first tensor that may overlap the next window
        release_from_ = w_.tensors.empty() ? 0 : w_.tensors.front().file_offset;
        for (uint64_t k = 0; k < n_chunks_; ++k) {
            const uint32_t i = static_cast<uint32_t>(k % nb);
            if (k >= 1 && k < nb) buffers[k] = more[k - 1].get();  // rethrows the helper's allocation error
            wait_slot(events, in_flight_end, i);
            throw_if_cancelled(k);
            const uint64_t a = k * stage, b = std::min(a + stage, total);
            std::byte* buf = buffers[i]->data();
            // The window goes out in slices (dma_slice_bytes; one slice when 0): slice m is queued for DMA as soon
            // as it is gathered, so the copy engine starts before the whole window is in the buffer.
            const uint64_t slice = o_.dma_slice_bytes ? std::min(o_.dma_slice_bytes, b - a) : b - a;
            if (k + 1 < n_chunks_) {
                const auto tp = Clock::now();  // gather time includes the readahead hint for the next window
                prefetch_window(b, std::min(b + stage, total));
                stats_.gather_seconds += since(tp);
            }
            for (uint64_t sa = a; sa < b; sa += slice) {
                const uint64_t sb = std::min(sa + slice, b);
                std::byte* sbuf = buf + (sa - a);
                segs.clear();
                uint64_t cursor = sa;               // next slice byte not yet covered by a segment
                uint64_t consumed = release_from_;  // file offset up to which the mapping has been gathered
                while (ti < w_.tensors.size() && plan_.tensors[ti].offset + plan_.tensors[ti].bytes <= sa) ++ti;
                for (size_t j = ti; j < w_.tensors.size() && plan_.tensors[j].offset < sb; ++j) {
                    const TensorPlacement& p = plan_.tensors[j];
                    const uint64_t s = std::max(p.offset, sa), e = std::min(p.offset + p.bytes, sb);
                    if (s >= e) continue;                                                         // an empty tensor
                    if (s > cursor) segs.push_back({sbuf + (cursor - sa), nullptr, s - cursor});  // alignment padding
                    if (fd >= 0) {
                        const uint64_t at = w_.tensors[j].file_offset + (s - p.offset);
                        segs.push_back({sbuf + (s - sa), nullptr, e - s, fd, at});
                    } else {
                        segs.push_back({sbuf + (s - sa), w_.tensors[j].data.data() + (s - p.offset), e - s});
                    }
                    cursor = e;
                    consumed = w_.tensors[j].file_offset + (e - p.offset);
                }
                if (cursor < sb) segs.push_back({sbuf + (cursor - sa), nullptr, sb - cursor});
                const auto tg = Clock::now();
                std::optional<ReadFailure> failed = pool.run(segs);
                if (fd >= 0 && !failed && dev_.read_fault(sa, sb)) {
                    failed = ReadFailure{segs.front().file_offset, sb - sa, 0, EIO};
                }
                stats_.gather_seconds += since(tg);
                if (failed) {
                    throw Error(
                        ErrorCode::FileUnreadable,
                        fmt::format("{}: reading {} bytes at offset {} for chunk {} of {} failed after {} "
                                    "bytes: {}",
                                    file_->path(), failed->bytes, failed->file_offset, k + 1, n_chunks_, failed->got,
                                    failed->error ? std::strerror(failed->error)
                                                  : "unexpected end of file (truncated since it was mapped?)"));
                }
                release(consumed);
                stream->copy_to_device(arena_.data() + sa, sbuf, sb - sa);
            }
            stream->record(*events[i]);
            in_flight_end[i] = b;
        }
        drain(events, in_flight_end);
        stream->synchronize();
        stats_.seconds = since(t0_);
        releaser.finish();  // every transferred page released before the load reports done
        releaser_ = nullptr;
        emit(Progress::Kind::Done, done_, last_tensor(done_));
        return stats_;
    }

private:
    // Registers the mapping's tensor data (whole pages) for DMA in place; nullptr (and the reason in the stats) when
    // there is no file or the device refuses, and the transfer stages as usual.
    std::unique_ptr<device::HostRegistration> register_mapping() {
        if (file_ == nullptr || w_.tensors.empty()) {
            stats_.direct_note = "no file behind the weights";
            return nullptr;
        }
        static const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
        uint64_t lo = UINT64_MAX, hi = 0;
        for (const auto& t : w_.tensors) {
            lo = std::min(lo, t.file_offset);
            hi = std::max(hi, t.file_offset + t.n_bytes);
        }
        direct_lo_ = lo / page * page;
        direct_hi_ = (hi + page - 1) / page * page;  // inside the mapping: mmap maps the file's last page whole
        try {
            return dev_.register_host(file_->bytes().data() + direct_lo_, direct_hi_ - direct_lo_);
        } catch (const Error& e) {
            stats_.direct_note = e.what();
            return nullptr;
        }
    }

    // The transfer without staging: every window is queued as one copy per tensor straight from the registered
    // mapping (and the alignment padding from a small pinned block of zeros), followed by an event; at most `nb`
    // windows are in flight, so progress and cancellation keep the staging path's granularity.
    void run_direct(uint32_t nb) {
        const uint64_t total = plan_.weight_bytes;
        const uint64_t stage = std::min(o_.chunk_bytes, total);
        uint64_t max_gap = 0, prev_end = 0;
        for (const TensorPlacement& p : plan_.tensors) {
            if (p.bytes == 0) continue;
            max_gap = std::max(max_gap, p.offset - std::min(p.offset, prev_end));
            prev_end = std::max(prev_end, p.offset + p.bytes);
        }
        max_gap = std::max(max_gap, total - std::min(total, prev_end));
        std::unique_ptr<device::PinnedMemory> zeros;
        if (max_gap > 0) {
            zeros = dev_.allocate_pinned(max_gap);
            std::memset(zeros->data(), 0, max_gap);
        }
        std::vector<std::unique_ptr<device::Event>> events;
        for (uint32_t i = 0; i < nb; ++i) events.push_back(dev_.create_event());
        std::unique_ptr<device::Stream> stream = dev_.create_stream();
        std::vector<uint64_t> in_flight_end(nb, 0);
        size_t ti = 0;
        for (uint64_t k = 0; k < n_chunks_; ++k) {
            const uint32_t i = static_cast<uint32_t>(k % nb);
            wait_slot(events, in_flight_end, i);
            throw_if_cancelled(k);
            const uint64_t a = k * stage, b = std::min(a + stage, total);
            const auto tq = Clock::now();
            uint64_t cursor = a;
            while (ti < w_.tensors.size() && plan_.tensors[ti].offset + plan_.tensors[ti].bytes <= a) ++ti;
            for (size_t j = ti; j < w_.tensors.size() && plan_.tensors[j].offset < b; ++j) {
                const TensorPlacement& p = plan_.tensors[j];
                const uint64_t s = std::max(p.offset, a), e = std::min(p.offset + p.bytes, b);
                if (s >= e) continue;
                if (s > cursor) stream->copy_to_device(arena_.data() + cursor, zeros->data(), s - cursor);
                stream->copy_to_device(arena_.data() + s, w_.tensors[j].data.data() + (s - p.offset), e - s);
                cursor = e;
            }
            if (cursor < b) stream->copy_to_device(arena_.data() + cursor, zeros->data(), b - cursor);
            stream->record(*events[i]);
            stats_.gather_seconds += since(tq);  // here: queueing the copies
            in_flight_end[i] = b;
        }
        drain(events, in_flight_end);
        stream->synchronize();
    }

    // Buffer slot i's copy in flight (in_flight_end[i] != 0: the arena end it reaches) is waited for and reported
    // done; the slot is free after.
    void wait_slot(const std::vector<std::unique_ptr<device::Event>>& events, std::vector<uint64_t>& in_flight_end,
                   uint32_t i) {
        if (in_flight_end[i] == 0) return;
        const auto tw = Clock::now();
        events[i]->synchronize();
        stats_.wait_seconds += since(tw);
        completed(in_flight_end[i]);
        in_flight_end[i] = 0;
    }

    // Waits for every copy still in flight, in chunk order: slot (n_chunks % nb) holds the oldest.
    void drain(const std::vector<std::unique_ptr<device::Event>>& events, std::vector<uint64_t>& in_flight_end) {
        const uint64_t nb = in_flight_end.size();
        for (uint64_t k = n_chunks_ - std::min(n_chunks_, nb); k < n_chunks_; ++k) {
            wait_slot(events, in_flight_end, static_cast<uint32_t>(k % nb));
        }
    }

    // Before window k is queued: a cancelled load stops there.
    void throw_if_cancelled(uint64_t k) const {
        if (cancel_ && cancel_->load(std::memory_order_relaxed)) {
            throw Error(ErrorCode::Cancelled, fmt::format("load cancelled after {} of {} bytes (chunk {} of {})", done_,
                                                          plan_.weight_bytes, k, n_chunks_));
        }
    }

    void build_layer_ends() {
        layer_ends_.assign(w_.layers.size(), LayerEnd{0, -1, {}});
        for (size_t j = 0; j < w_.tensors.size(); ++j) {
            const int32_t l = w_.tensors[j].layer;
            if (l < 0) continue;
            const uint64_t end = plan_.tensors[j].offset + plan_.tensors[j].bytes;
            auto& le = layer_ends_[static_cast<size_t>(l)];
            if (le.layer < 0 || end >= le.end) le = {end, l, w_.tensors[j].name};
        }
        std::erase_if(layer_ends_, [](const LayerEnd& e) { return e.layer < 0; });
        std::sort(layer_ends_.begin(), layer_ends_.end(), [](auto& x, auto& y) { return x.end < y.end; });
    }

    // The tensor holding arena byte end-1 (the last one placed before `end`).
    std::pair<std::string_view, int32_t> last_tensor(uint64_t end) const {
        auto it = std::upper_bound(plan_.tensors.begin(), plan_.tensors.end(), end - 1,
                                   [](uint64_t v, const TensorPlacement& p) { return v < p.offset; });
        if (it == plan_.tensors.begin()) return {{}, -1};
        const auto& t = w_.tensors[static_cast<size_t>(it - plan_.tensors.begin() - 1)];
        return {t.name, t.layer};
    }

    void completed(uint64_t end) {
        done_ = end;
        ++chunks_done_;
        emit(Progress::Kind::Chunk, end, last_tensor(end));
        while (next_layer_ < layer_ends_.size() && layer_ends_[next_layer_].end <= end) {
            const auto& le = layer_ends_[next_layer_++];
            emit(Progress::Kind::Layer, end, {le.tensor, le.layer});
        }
    }

    void emit(Progress::Kind kind, uint64_t bytes, std::pair<std::string_view, int32_t> where) {
        if (!progress_) return;
        Progress p;
        p.kind = kind;
        p.bytes_done = bytes;
        p.bytes_total = plan_.weight_bytes;
        p.chunk = chunks_done_;
        p.n_chunks = n_chunks_;
        p.tensor = where.first;
        p.layer = where.second;
        p.n_layers = static_cast<uint32_t>(w_.layers.size());
        p.elapsed_s = since(t0_);
        progress_(p);
    }

    void prefetch_window(uint64_t a, uint64_t b) {
        if (!o_.release_pages || !file_) return;  // prefetch only makes sense for a real mapping
        for (size_t j = 0; j < w_.tensors.size(); ++j) {
            const TensorPlacement& p = plan_.tensors[j];
            if (p.offset + p.bytes <= a) continue;
            if (p.offset >= b) break;
            const uint64_t s = std::max(p.offset, a), e = std::min(p.offset + p.bytes, b);
            if (s < e) prefetch(w_.tensors[j].data.data() + (s - p.offset), e - s);
        }
    }

    // Drops the mapping's pages below `consumed` (a file offset). MappedFile::release rounds inwards to whole pages, so
    // the next call starts at the page boundary below this call's end: a straddling page is dropped once it is done.
    void release(uint64_t consumed) {
        if (!o_.release_pages || !file_ || releaser_ == nullptr || consumed <= release_from_) return;
        releaser_->push(release_from_, consumed - release_from_);
        static const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
        release_from_ = consumed / page * page;
    }

    device::Device& dev_;
    const model::ModelWeights& w_;
    const Plan& plan_;
    device::DeviceMemory& arena_;
    const gguf::File* file_;
    const TransferOptions& o_;
    const ProgressFn& progress_;
    const std::atomic<bool>* cancel_;
    TransferStats stats_;
    Clock::time_point t0_ = Clock::now();
    uint64_t n_chunks_ = 0, chunks_done_ = 0, done_ = 0, release_from_ = 0;
    uint64_t direct_lo_ = 0, direct_hi_ = 0;  // the registered file range (direct transfers)
    PageReleaser* releaser_ = nullptr;        // run()'s, while it runs
    std::vector<LayerEnd> layer_ends_;
    size_t next_layer_ = 0;
};

}  // namespace

std::string_view gather_source_name(GatherSource s) { return s == GatherSource::Read ? "read" : "mapping"; }

TransferStats transfer_weights(device::Device& device, const model::ModelWeights& weights, const Plan& plan,
                               device::DeviceMemory& arena, const gguf::File* file, const TransferOptions& options,
                               const ProgressFn& progress, const std::atomic<bool>* cancel) {
    if (plan.tensors.size() != weights.tensors.size()) {
        throw Error(ErrorCode::InvalidArgument, fmt::format("transfer: plan has {} tensors, model has {}",
                                                            plan.tensors.size(), weights.tensors.size()));
    }
    return Pipeline(device, weights, plan, arena, file, options, progress, cancel).run();
}

}  // namespace orcd::loader
