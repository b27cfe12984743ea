// Boost.Beast on Asio: a few I/O threads serve every connection, each on its own strand. A connection reads one
// request at a time (pipelined requests wait in its buffer and are answered in order), hands it to a handler thread,
// and while the answer is pending keeps one read open on the socket so that a client that leaves is noticed at once
// (that is what cancels its job), whether the answer is a stream or a single response.
#include "server/transport.h"

#include <fmt/format.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "common/error.h"
#include "server/http_parse.h"

namespace orcd::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr size_t kIoThreads = 2;
constexpr size_t kHandlerThreads = 2;
// A stream that has written nothing for this long gets an SSE comment (proxies and clients see it is alive).
constexpr std::chrono::milliseconds kHeartbeat{1000};
// Bytes read ahead while an answer is pending (the next pipelined request, or nothing); beyond this the socket is
// left unread until the answer is done, so a client cannot make the server buffer without bound.
constexpr size_t kReadAheadChunk = 4096;

std::string status_line(int status) {
    const auto reason = http::obsolete_reason(static_cast<http::status>(status));
    return fmt::format("HTTP/1.1 {} {}\r\n", status, std::string_view(reason.data(), reason.size()));
}

// The head of a response; `length` is the Content-Length, or nullopt for a chunked body.
std::string serialize_head(const HttpResponse& r, std::optional<size_t> length, bool keep_alive) {
    std::string s = status_line(r.status);
    if (!r.content_type.empty()) s += fmt::format("Content-Type: {}\r\n", r.content_type);
    for (const auto& [k, v] : r.headers) s += fmt::format("{}: {}\r\n", k, v);
    if (length) {
        if (r.status != 204) s += fmt::format("Content-Length: {}\r\n", *length);  // RFC 9110: never on a 204
    } else {
        s += "Transfer-Encoding: chunked\r\n";
    }
    s += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    return s;
}

void raise_fd_limit() {
    // Every connection is a descriptor: the soft limit (often 1024) would cap --max-connections long before memory.
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

}  // namespace

std::string log_escape(std::string_view s, size_t max_bytes) {
    std::string out;
    const size_t n = std::min(s.size(), max_bytes);
    for (size_t i = 0; i < n; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            out += fmt::format("\\x{:02x}", c);
        } else {
            out += static_cast<char>(c);
        }
    }
    if (n < s.size()) out += "...";
    return out;
}

class Session;

struct Transport::Impl {
    TransportLimits limits;
    Handler handler;
    RefusalBuilder refusal;
    net::io_context ioc;
    tcp::acceptor acceptor{ioc};
    net::steady_timer accept_retry{ioc};
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work{ioc.get_executor()};
    std::vector<std::thread> io_threads;
    net::thread_pool handler_pool{kHandlerThreads};
    std::atomic<bool> stopping{false};
    std::atomic<size_t> connections{0};
    std::atomic<size_t> exchanges{0};
    std::mutex sessions_mu;
    std::unordered_map<Session*, std::shared_ptr<Session>> sessions;  // every open connection
    bool stopped = false;

    void accept();
    void for_each_session(const std::function<void(const std::shared_ptr<Session>&)>& fn);
};

class ExchangeImpl;

// One connection. Everything below runs on the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
public:
    Session(Transport::Impl& t, tcp::socket socket)
        : t_(t), stream_(std::move(socket)), heartbeat_(stream_.get_executor()) {
        t_.connections.fetch_add(1);
    }
    ~Session() { t_.connections.fetch_sub(1); }

    auto executor() { return stream_.get_executor(); }

    void start() { read_request(); }

    // Refuses the connection at once (too many open): one answer, then close.
    void refuse_and_close(const HttpResponse& r) {
        keep_alive_ = false;
        state_ = State::Answering;
        enqueue(serialize_head(r, r.body.size(), false) + r.body);
        answer_.done = true;
    }

    // At shutdown: idle and half-read connections close now; the others after their answer.
    void drain() {
        keep_alive_ = false;
        if (state_ == State::Reading) close();
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        heartbeat_.cancel();
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
        stream_.close();
        client_gone();
        finish_exchange();
        std::lock_guard lock(t_.sessions_mu);
        t_.sessions.erase(this);
    }

    // --- called through ExchangeImpl, on the strand --------------------------------------------------------------
    // Calls from an earlier exchange of this connection (its handler dropping it late) are ignored.
    bool current(uint64_t seq) const { return seq == exchange_seq_ && !closed_; }

    void reply(uint64_t seq, const HttpResponse& r) {
        if (!current(seq) || state_ != State::Answering || answer_.head_sent) return;
        answer_.head_sent = true;
        const bool head_only = method_ == "HEAD";
        std::string bytes = serialize_head(r, r.body.size(), keep_alive_ && !t_.stopping.load());
        if (!head_only) bytes += r.body;
        enqueue(std::move(bytes));
        answer_.done = true;
        maybe_finish();
    }
    void begin_stream(uint64_t seq, const HttpResponse& head) {
        if (!current(seq) || state_ != State::Answering || answer_.head_sent) return;
        answer_.head_sent = true;
        answer_.streaming = true;
        enqueue(serialize_head(head, std::nullopt, keep_alive_ && !t_.stopping.load()));
        arm_heartbeat();
    }
    void stream_write(uint64_t seq, const std::string& bytes) {
        if (!current(seq) || !answer_.streaming || answer_.done || bytes.empty()) return;
        enqueue(fmt::format("{:x}\r\n", bytes.size()) + bytes + "\r\n");
    }
    void end_stream(uint64_t seq) {
        if (!current(seq) || !answer_.streaming || answer_.done) return;
        heartbeat_.cancel();
        enqueue("0\r\n\r\n");
        answer_.done = true;
        maybe_finish();
    }
    void set_disconnect(uint64_t seq, std::function<void()> fn) {
        if (seq != exchange_seq_) return;
        if (answer_.gone) {
            if (fn) fn();
            return;
        }
        answer_.on_gone = std::move(fn);
    }
    // The handler dropped its exchange: if it never answered, nobody will; the connection closes.
    void exchange_dropped(uint64_t seq) {
        if (current(seq) && state_ == State::Answering && !answer_.done) close();
    }

private:
    enum class State { Reading, Answering };

    void read_request() {
        state_ = State::Reading;
        resume_after_watch_ = false;
        answer_ = {};
        parser_.emplace();
        configure_parser(*parser_, t_.limits);
        stream_.expires_after(t_.limits.request_timeout);
        http::async_read(stream_, buffer_, *parser_,
                         [self = shared_from_this()](beast::error_code ec, size_t) { self->on_request(ec); });
    }

    void refuse(Refusal why, const std::string& path, const std::string& detail) {
        keep_alive_ = false;
        state_ = State::Answering;
        HttpResponse r = t_.refusal(why, path, detail);
        enqueue(serialize_head(r, r.body.size(), false) + r.body);
        answer_.done = true;
    }

    void on_request(beast::error_code ec) {
        if (closed_) return;
        stream_.expires_never();
        if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
            ec == net::error::operation_aborted || ec == beast::error::timeout) {
            // Gone, idle too long, or a request not read in full within the deadline: dropped without an answer
            // (a half-read request may be a slowloris; the socket is already closed on a timeout).
            return close();
        }
        if (ec) {
            const RefusedRequest r = refusal_for(ec, std::string(parser_->get().target()), t_.limits);
            return refuse(r.why, r.path, r.detail);
        }
        bool keep_alive = false;
        auto finished = finish_request(*parser_, t_.limits, keep_alive);
        if (auto* r = std::get_if<RefusedRequest>(&finished)) return refuse(r->why, r->path, r->detail);
        HttpRequest req = std::move(std::get<HttpRequest>(finished));
        method_ = req.method;
        keep_alive_ = keep_alive && t_.limits.keep_alive && !t_.stopping.load();
        parser_.reset();
        state_ = State::Answering;
        t_.exchanges.fetch_add(1);
        counted_ = true;
        watch();
        auto ex = make_exchange();
        net::post(t_.handler_pool, [this_t = &t_, req = std::move(req), ex]() mutable {
            try {
                this_t->handler(std::move(req), std::move(ex));
            } catch (...) {
                // The exchange is dropped unanswered: the connection closes.
            }
        });
    }

    std::shared_ptr<Exchange> make_exchange();

    // Keeps one read open while the answer is pending: a client that closes is seen at once. What it reads (a
    // pipelined request) stays in the buffer for later, up to the header budget; then reading pauses.
    void watch() {
        if (watching_ || closed_ || buffer_.size() >= t_.limits.max_header_bytes + t_.limits.max_body_bytes) return;
        watching_ = true;
        stream_.async_read_some(buffer_.prepare(kReadAheadChunk),
                                [self = shared_from_this()](beast::error_code ec, size_t n) {
                                    self->watching_ = false;
                                    if (self->closed_) return;
                                    if (ec == net::error::operation_aborted && self->resume_after_watch_) {
                                        self->resume_after_watch_ = false;
                                        return self->read_request();
                                    }
                                    if (ec) return self->close();
                                    self->buffer_.commit(n);
                                    if (self->state_ == State::Answering) {
                                        self->watch();
                                    } else {
                                        self->read_request();
                                    }
                                });
    }

    void client_gone() {
        if (state_ != State::Answering || answer_.done || answer_.gone) return;
        answer_.gone = true;
        if (auto fn = std::move(answer_.on_gone)) fn();
        answer_.on_gone = nullptr;
    }

    void enqueue(std::string bytes) {
        pending_bytes_ += bytes.size();
        queue_.push_back(std::move(bytes));
        if (pending_bytes_ > t_.limits.max_pending_write_bytes) return close();  // a reader too slow for its stream
        if (!writing_) write_next();
    }

    void write_next() {
        if (queue_.empty() || closed_) return;
        writing_ = true;
        stream_.expires_after(t_.limits.request_timeout);  // a client that stops reading is dropped
        net::async_write(stream_, net::buffer(queue_.front()),
                         [self = shared_from_this()](beast::error_code ec, size_t n) {
                             self->writing_ = false;
                             if (self->closed_) return;
                             self->stream_.expires_never();
                             if (ec) return self->close();
                             self->pending_bytes_ -= n;
                             self->queue_.pop_front();
                             self->last_write_ = std::chrono::steady_clock::now();
                             if (!self->queue_.empty()) return self->write_next();
                             self->maybe_finish();
                         });
    }

    // The answer is complete and written: read the next request, or close.
    void maybe_finish() {
        if (!answer_.done || writing_ || !queue_.empty() || closed_) return;
        finish_exchange();
        if (!keep_alive_ || t_.stopping.load()) return linger_close();
        state_ = State::Reading;
        if (watching_) {
            // The read in flight must end before a new one starts; no write is pending, so cancel touches only it.
            resume_after_watch_ = true;
            beast::error_code ec;
            stream_.socket().cancel(ec);
        } else {
            read_request();
        }
    }

    // Closing a socket with unread input resets the connection, and the client may lose the answer it has not read
    // yet (a 413 sent while it still uploads): the send side closes first, and what the client still sends is read
    // and dropped, briefly and up to a bound.
    void linger_close() {
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        if (watching_ || ec) return close();
        stream_.expires_after(std::chrono::seconds(2));
        linger_read();
    }
    void linger_read() {
        stream_.async_read_some(net::buffer(discard_), [self = shared_from_this()](beast::error_code ec, size_t n) {
            self->discarded_ += n;
            if (ec || self->discarded_ > (1u << 20)) return self->close();
            self->linger_read();
        });
    }

    void finish_exchange() {
        answer_.on_gone = nullptr;
        if (counted_) {
            counted_ = false;
            t_.exchanges.fetch_sub(1);
        }
    }

    void arm_heartbeat() {
        heartbeat_.expires_after(kHeartbeat);
        heartbeat_.async_wait([self = shared_from_this()](beast::error_code ec) {
            if (ec || self->closed_ || self->answer_.done) return;
            if (std::chrono::steady_clock::now() - self->last_write_ >= kHeartbeat && self->queue_.empty()) {
                self->stream_write(self->exchange_seq_, ": keep-alive\n\n");
            }
            self->arm_heartbeat();
        });
    }

    Transport::Impl& t_;
    beast::tcp_stream stream_;
    net::steady_timer heartbeat_;
    beast::flat_buffer buffer_;
    std::optional<BeastParser> parser_;
    State state_ = State::Reading;
    std::string method_;
    bool keep_alive_ = true;
    // The current exchange's answer and client, reset as a whole when the next request is read.
    struct Answer {
        bool head_sent = false;
        bool streaming = false;  // chunked: begin_stream .. end_stream
        bool done = false;       // all of it queued (refusals too)
        bool gone = false;       // the client went away before it was done
        std::function<void()> on_gone;
    };
    Answer answer_;
    bool closed_ = false;
    bool counted_ = false;
    bool watching_ = false;
    bool writing_ = false;
    bool resume_after_watch_ = false;
    std::deque<std::string> queue_;
    size_t pending_bytes_ = 0;
    uint64_t exchange_seq_ = 0;  // the current exchange's number
    std::chrono::steady_clock::time_point last_write_{};
    std::array<char, 4096> discard_{};
    size_t discarded_ = 0;
};

// Carries every call to the session's strand. Holds the session weakly: a closed connection is simply gone.
class ExchangeImpl final : public Exchange {
public:
    ExchangeImpl(std::weak_ptr<Session> s, net::any_io_executor ex, uint64_t seq)
        : session_(std::move(s)), ex_(std::move(ex)), seq_(seq) {}
    ~ExchangeImpl() override {
        on([q = seq_](Session& s) { s.exchange_dropped(q); });
    }
    void reply(HttpResponse r) override {
        on([q = seq_, r = std::move(r)](Session& s) { s.reply(q, r); });
    }
    void begin_stream(HttpResponse head) override {
        on([q = seq_, h = std::move(head)](Session& s) { s.begin_stream(q, h); });
    }
    void write(std::string bytes) override {
        on([q = seq_, b = std::move(bytes)](Session& s) { s.stream_write(q, b); });
    }
    void end_stream() override {
        on([q = seq_](Session& s) { s.end_stream(q); });
    }
    void on_disconnect(std::function<void()> fn) override {
        on([q = seq_, fn = std::move(fn)](Session& s) mutable { s.set_disconnect(q, std::move(fn)); });
    }

private:
    template <class F>
    void on(F&& f) {
        net::post(ex_, [w = session_, f = std::forward<F>(f)]() mutable {
            if (auto s = w.lock()) f(*s);
        });
    }
    std::weak_ptr<Session> session_;
    net::any_io_executor ex_;
    const uint64_t seq_;
};

std::shared_ptr<Exchange> Session::make_exchange() {
    return std::make_shared<ExchangeImpl>(weak_from_this(), stream_.get_executor(), ++exchange_seq_);
}

void Transport::Impl::accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
        if (ec) {
            if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
            // Out of descriptors, or a connection reset before accept: try again shortly (at once would spin while
            // the descriptors stay exhausted).
            accept_retry.expires_after(std::chrono::milliseconds(50));
            accept_retry.async_wait([this](beast::error_code wait_ec) {
                if (!wait_ec) accept();
            });
            return;
        }
        // Every write is a whole unit the client waits for (a response, an SSE chunk): Nagle would hold a small
        // chunk while an earlier one is unacknowledged, which the client's delayed ACK can stretch to tens of ms.
        beast::error_code nodelay_ec;
        socket.set_option(tcp::no_delay(true), nodelay_ec);  // best effort: a socket without it still works
        auto s = std::make_shared<Session>(*this, std::move(socket));
        const bool over = connections.load() > limits.max_connections;
        {
            std::lock_guard lock(sessions_mu);
            sessions.emplace(s.get(), s);
        }
        net::dispatch(s->executor(), [this, s, over] {
            if (over) {
                s->refuse_and_close(refusal(Refusal::TooManyConnections, "",
                                            fmt::format("{} connections are open (--max-connections {})",
                                                        connections.load() - 1, limits.max_connections)));
            } else {
                s->start();
            }
        });
        accept();
    });
}

void Transport::Impl::for_each_session(const std::function<void(const std::shared_ptr<Session>&)>& fn) {
    std::vector<std::shared_ptr<Session>> all;
    {
        std::lock_guard lock(sessions_mu);
        for (auto& [p, s] : sessions) all.push_back(s);
    }
    for (auto& s : all) fn(s);
}

Transport::Transport(TransportLimits limits, Handler handler, RefusalBuilder refusal)
    : impl_(std::make_unique<Impl>()) {
    impl_->limits = limits;
    impl_->handler = std::move(handler);
    impl_->refusal = std::move(refusal);
}

Transport::~Transport() { stop(); }

int Transport::bind(const std::string& host, int port) {
    raise_fd_limit();
    Impl& t = *impl_;
    beast::error_code ec;
    auto fail = [&](std::string_view what) {
        return Error(ErrorCode::InvalidArgument, fmt::format("cannot listen on {}:{}: {} failed: {} (is the port in "
                                                             "use or the address not local?)",
                                                             host, port, what, ec.message()));
    };
    tcp::resolver resolver(t.ioc);
    auto results =
        resolver.resolve(host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || results.empty()) throw fail("resolve");
    const tcp::endpoint ep = results.begin()->endpoint();
    t.acceptor.open(ep.protocol(), ec);
    if (ec) throw fail("open");
    t.acceptor.set_option(net::socket_base::reuse_address(true), ec);
    t.acceptor.bind(ep, ec);
    if (ec) throw fail("bind");
    t.acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) throw fail("listen");
    return t.acceptor.local_endpoint().port();
}

int Transport::adopt_listener(int fd) {
    raise_fd_limit();
    Impl& t = *impl_;
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        const int err = errno;
        ::close(fd);
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("adopting listening socket {}: {}", fd, std::strerror(err)));
    }
    beast::error_code ec;
    t.acceptor.assign(addr.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
    if (ec) {
        ::close(fd);
        throw Error(ErrorCode::InvalidArgument, fmt::format("adopting listening socket {}: {}", fd, ec.message()));
    }
    return t.acceptor.local_endpoint().port();
}

int Transport::duplicate_listener() const {
    const int fd = impl_->acceptor.is_open() ? ::fcntl(impl_->acceptor.native_handle(), F_DUPFD_CLOEXEC, 0) : -1;
    if (fd < 0) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("no listening socket to hand over: {}",
                                impl_->acceptor.is_open() ? std::strerror(errno) : "not bound"));
    }
    return fd;
}

void Transport::stop_accepting() {
    Impl& t = *impl_;
    std::promise<void> closed;
    net::post(t.ioc, [&t, &closed] {
        beast::error_code ec;
        t.acceptor.close(ec);
        t.accept_retry.cancel();
        closed.set_value();
    });
    closed.get_future().wait();
}

void Transport::start() {
    Impl& t = *impl_;
    t.accept();
    for (size_t i = 0; i < kIoThreads; ++i) t.io_threads.emplace_back([&t] { t.ioc.run(); });
}

void Transport::begin_drain() {
    Impl& t = *impl_;
    if (t.stopping.exchange(true)) return;
    t.for_each_session([](const std::shared_ptr<Session>& s) { net::post(s->executor(), [s] { s->drain(); }); });
}

size_t Transport::open_exchanges() const { return impl_->exchanges.load(); }

size_t Transport::open_connections() const { return impl_->connections.load(); }

void Transport::stop() {
    Impl& t = *impl_;
    if (t.stopped) return;
    t.stopped = true;
    begin_drain();
    net::post(t.ioc, [&t] {
        beast::error_code ec;
        t.acceptor.close(ec);
        t.accept_retry.cancel();
    });
    t.handler_pool.join();
    t.for_each_session([](const std::shared_ptr<Session>& s) { net::post(s->executor(), [s] { s->close(); }); });
    // With every socket closed and the acceptor gone, the I/O threads run out of work and return.
    t.work.reset();
    for (auto& th : t.io_threads) th.join();
    t.io_threads.clear();
    std::lock_guard lock(t.sessions_mu);
    t.sessions.clear();
}

}  // namespace orcd::server
