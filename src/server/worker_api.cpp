#include "server/worker_api.h"

#include <fmt/format.h>

#include "server/requests.h"
#include "server/wire.h"

namespace orcd::server {

using json = nlohmann::json;

HttpResponse unavailable(ServerContext& ctx, std::string_view path, std::string_view why) {
    ctx.metrics.count_request(Outcome::Rejected);
    HttpResponse r = api_error(path, 503, "UNAVAILABLE", why, "server_error");
    r.headers.emplace_back("Retry-After", "1");
    return r;
}

std::variant<std::shared_ptr<Job>, HttpResponse> submit_job(ServerContext& ctx, std::string_view path,
                                                            std::string job_id, engine::GenerateRequest gen) {
    auto s = ctx.scheduler.submit(std::move(job_id), std::move(gen));
    switch (s.status) {
        case SubmitStatus::Accepted: return s.job;
        case SubmitStatus::QueueFull:
            return unavailable(ctx, path,
                               fmt::format("the job queue is full ({} waiting, --max-queue {}); retry later",
                                           ctx.scheduler.queued(), ctx.opt.max_queue));
        case SubmitStatus::Draining: return unavailable(ctx, path, "the worker is shutting down");
        case SubmitStatus::Refused: {
            // A request the engine can never run (larger than the whole KV pool, beyond the context): 400 at once.
            ctx.metrics.count_request(Outcome::Invalid);
            const bool overflow = s.error == ErrorCode::ContextOverflow;
            return api_error(path, 400, overflow ? "CONTEXT_OVERFLOW" : "INVALID_REQUEST", s.message,
                             "invalid_request_error", {});
        }
        case SubmitStatus::DuplicateId:
            ctx.metrics.count_request(Outcome::Invalid);
            return api_error(path, 409, "DUPLICATE_JOB_ID", "a job with this job_id is already queued or running",
                             "invalid_request_error", "job_id");
    }
    return api_error(path, 500, "INTERNAL", "unknown submission status", "server_error");
}

void WorkerApi::execute(const HttpRequest& req, const Ex& ex) {
    if (ctx_.scheduler.draining()) return ex->reply(unavailable(ctx_, req.path, "the worker is shutting down"));
    auto body = read_json_body(req, &ctx_.metrics);
    if (auto* refused = std::get_if<HttpResponse>(&body)) return ex->reply(std::move(*refused));
    const json& doc = std::get<json>(body);
    std::vector<FieldError> errors;
    ExecuteRequest r = parse_execute(doc, ctx_.service.info().context_length, errors);
    if (!errors.empty()) {
        ctx_.metrics.count_request(Outcome::Invalid);
        json fields = json::object();
        std::string names;
        for (const auto& e : errors) {
            fields[e.field] = e.message;
            names += (names.empty() ? "" : ", ") + e.field;
        }
        return ex->reply(
            api_error(req.path, 400, "INVALID_REQUEST",
                      fmt::format("{} invalid field{}: {}", errors.size(), errors.size() == 1 ? "" : "s", names),
                      "invalid_request_error", {}, fields));
    }
    if (auto bad = apply_constraint(ctx_.service, ctx_.opt, r.constraint, r.generate)) {
        ctx_.metrics.count_request(Outcome::Invalid);
        return ex->reply(api_error(req.path, 400, "INVALID_REQUEST", *bad, "invalid_request_error", {},
                                   json{{r.constraint.param, *bad}}));
    }
    auto submitted = submit_job(ctx_, req.path, r.job_id, std::move(r.generate));
    if (auto* refused = std::get_if<HttpResponse>(&submitted)) return ex->reply(std::move(*refused));
    auto job = std::get<std::shared_ptr<Job>>(submitted);
    server_log(fmt::format("job {}: accepted ({} waiting)", job->id(), ctx_.scheduler.queued()));
    const std::string model = ctx_.service.info().model_id;
    stream_job(ex, job, ctx_.scheduler, HttpResponse{},
               [id = job->id(), model, weak = std::weak_ptr<Job>(job)](const JobEvent& ev) {
                   if (ev.terminal()) {
                       if (auto j = weak.lock()) log_job_end(*j, ev);
                   }
                   return worker_sse(ev, id, model);
               });
}

void WorkerApi::cancel(const HttpRequest& req, const Ex& ex) {
    auto body = read_json_body(req, nullptr);
    if (auto* refused = std::get_if<HttpResponse>(&body)) return ex->reply(std::move(*refused));
    const json& doc = std::get<json>(body);
    const json* id = doc.is_object() && doc.contains("job_id") ? &doc["job_id"] : nullptr;
    const std::string message = !id || !id->is_string() ? std::string("required: expected a non-empty string")
                                                        : job_id_problem(id->get<std::string>());
    if (!message.empty()) {
        return ex->reply(api_error(req.path, 400, "INVALID_REQUEST", "1 invalid field: job_id", "invalid_request_error",
                                   "job_id", {{"job_id", message}}));
    }
    const std::string job_id = id->get<std::string>();
    const CancelStatus s = ctx_.scheduler.cancel(job_id, CancelReason::Request);
    const char* state = s == CancelStatus::Running ? "running" : s == CancelStatus::Queued ? "queued" : "not_found";
    if (s != CancelStatus::NotFound) server_log(fmt::format("job {}: cancel requested ({})", job_id, state));
    // 202 whatever the state: cancelling is idempotent, and a job that already ended needs nothing more.
    ex->reply(json_response(202, {{"job_id", job_id}, {"state", state}}));
}

void WorkerApi::health(const HttpRequest&, const Ex& ex) {
    const ServiceInfo& i = ctx_.service.info();
    const bool resident = ctx_.residency.healthy();
    const backend::DeviceMemoryReport vram = ctx_.service.device_memory();
    // The state a load balancer's health check reads ("loading" is answered before this server exists, by
    // loading_server.h): 200 only while ready, 503 while draining after SIGTERM or /shutdown, or when a weight left
    // the device.
    const bool draining = ctx_.scheduler.draining();
    const BatchSnapshot b = ctx_.metrics.batch();
    json j = {{"status", resident ? "healthy" : "unhealthy"},
              {"state", !resident  ? "unhealthy"
                        : draining ? "draining"
                                   : "ready"},
              {"model", i.model_id},
              {"model_path", i.model_path},
              {"arch", i.arch},
              {"resident", resident},
              {"quant_kind", i.quant_kind},
              {"vram_bytes_used", vram.total()},
              {"vram", {{"weights", vram.weights}, {"kv_cache", vram.kv_cache}, {"workspace", vram.workspace}}},
              {"tokenizer_kind", i.tokenizer_kind},
              {"vocab_size", i.vocab_size},
              {"context_length", i.context_length},
              {"uptime_seconds", ctx_.metrics.uptime_seconds()},
              {"device", i.device},
              {"worker_id", ctx_.opt.worker_id},
              {"accepting_jobs", !ctx_.scheduler.draining()},
              {"busy", ctx_.scheduler.busy()},
              {"queue_depth", ctx_.scheduler.queued()},
              {"batch", {{"parallel", b.parallel}, {"running", b.running}, {"waiting", b.waiting}}},
              {"kv_cache",
               {{"page_size", b.kv_page_size},
                {"pool_bytes", b.kv_pool_bytes},
                {"pages_total", b.kv.pages_total},
                {"pages_used", b.kv.pages_used},
                {"pages_free", b.kv_pages_unheld()},
                {"pages_cached", b.kv.pages_cached},
                {"prefix_cache_hit_rate", b.kv.prefix_hit_rate()},
                {"preemptions", b.kv.preemptions}}},
              {"limits", ctx_.limits_report()}};
    if (!resident) j["problem"] = ctx_.residency.problem();
    ex->reply(json_response(resident && !draining ? 200 : 503, j));
}

void WorkerApi::metrics(const HttpRequest&, const Ex& ex) {
    ctx_.metrics.set_vram_bytes(ctx_.service.device_memory().total());  // read now
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = ctx_.metrics.render();
    ex->reply(std::move(r));
}

void WorkerApi::shutdown(const HttpRequest&, const Ex& ex) {
    ex->reply(json_response(202, {{"status", "shutting_down"}}));
    ctx_.request_shutdown("POST /shutdown");
}

}  // namespace orcd::server
