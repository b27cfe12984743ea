#pragma once
// The HTTP/1.1 transport: an event-driven server on Boost.Beast and Asio (few threads, any number of connections).
// It owns connections, request parsing and its limits (header budget, body size including chunked bodies, one
// deadline for reading a whole request, connection count), response and SSE writing with backpressure, client
// disconnect detection, and the bounded drain at shutdown. It knows nothing of the APIs: every parsed request goes to
// one handler, and every refusal it makes itself is built by the `refusal` callback in the endpoint's error format.
// Beast stays inside transport.cpp.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace orcd::server {

struct TransportLimits {
    size_t max_header_bytes = 64 * 1024;               // request line + every header field, in all
    size_t max_body_bytes = 1 << 20;                   // after chunked decoding
    size_t max_target_bytes = 8 * 1024;                // the request target (414 above)
    std::chrono::milliseconds request_timeout{30000};  // to read one whole request; also the keep-alive idle limit
    size_t max_connections = 2048;                     // open at once; more are answered 503 and closed
    size_t max_pending_write_bytes = 8 << 20;          // a stream's unsent bytes; a client reading slower is dropped
    bool keep_alive = true;  // false: one request per connection, every answer says "Connection: close"
};

struct HttpRequest {
    std::string method;
    std::string target;                                        // as sent
    std::string path;                                          // the target without its query
    std::vector<std::pair<std::string, std::string>> headers;  // field names lowercase, in order
    std::string body;
    // The value of a header field, "" when absent (the first one when repeated).
    const std::string& header(std::string_view lowercase_name) const;
    bool has_header(std::string_view lowercase_name) const;
};

struct HttpResponse {
    int status = 200;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

// What the transport refuses by itself (before a handler sees the request), for the refusal callback.
enum class Refusal {
    MalformedRequest,   // 400: the parser's reason in `detail`
    HeadersTooLarge,    // 431
    TargetTooLong,      // 414
    BodyTooLarge,       // 413
    RequestTimeout,     // 408
    TooManyConnections  // 503
};

// One request's answer channel. Thread-safe: every call is carried to the connection's own strand. Exactly one of
// reply() or begin_stream() ... end_stream() should be called; if the exchange is dropped without either, the
// connection is closed.
class Exchange {
public:
    virtual ~Exchange() = default;
    virtual void reply(HttpResponse response) = 0;
    // Status and headers of a chunked response (its body is ignored); then any number of writes, then the end.
    virtual void begin_stream(HttpResponse head) = 0;
    virtual void write(std::string bytes) = 0;
    virtual void end_stream() = 0;
    // Runs once, on the transport's thread, when the client goes away (or the connection is dropped) before the
    // answer is complete. Set it before waiting on anything; it must not block.
    virtual void on_disconnect(std::function<void()> fn) = 0;
};

class Transport {
public:
    using Handler = std::function<void(HttpRequest, std::shared_ptr<Exchange>)>;
    // Builds the response to a refusal for the request seen so far (path may be empty when the request line itself
    // was not read).
    using RefusalBuilder = std::function<HttpResponse(Refusal, const std::string& path, const std::string& detail)>;

    // `handler` runs on a small pool of handler threads (it may tokenize, but must not wait for a job: it keeps the
    // Exchange and answers later).
    Transport(TransportLimits limits, Handler handler, RefusalBuilder refusal);
    ~Transport();  // stop()
    Transport(const Transport&) = delete;
    Transport& operator=(const Transport&) = delete;

    // Errors: InvalidArgument naming the address. Returns the bound port.
    int bind(const std::string& host, int port);
    // Instead of bind(): listens on a socket already bound and listening (owned from now on). Returns its port.
    // Errors: InvalidArgument.
    int adopt_listener(int fd);
    // A duplicate of the bound listening socket (the caller owns it): after this transport stops, the socket goes on
    // listening through the duplicate, and connections made meanwhile wait in its backlog for the next owner.
    // Errors: InvalidArgument when nothing is bound.
    int duplicate_listener() const;
    // Stops accepting (the listening socket is closed; connections already made go on). Returns once it is closed.
    void stop_accepting();
    void start();
    // Shutdown, step 1: closes idle and half-read connections at once and the others after their current answer;
    // connections made from now on get one answer (the API's 503 for new work) and are closed.
    void begin_drain();
    // Answers still being written (streams and requests whose handler has not answered yet).
    size_t open_exchanges() const;
    size_t open_connections() const;
    // Shutdown, step 2: stops listening, closes every connection and joins every thread. Idempotent.
    void stop();

    struct Impl;  // defined in transport.cpp, where the connections use it

private:
    std::unique_ptr<Impl> impl_;
};

// Escapes a client-supplied string for one log line: control characters, quotes, backslashes and non-ASCII bytes as
// \xNN, cut to `max_bytes` (with "..." when cut).
std::string log_escape(std::string_view s, size_t max_bytes = 200);

}  // namespace orcd::server
