/* The C API from C: load models on the host device or GPU 0, and every error code the API can produce.
 * Usage: test_c_api FIXTURE_DIR host|cuda. Exits 77 (ctest: skipped) when asked for cuda without a GPU. */
#include <orcd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_failures = 0;
static char g_dir[4096];

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s: %s)\n", __FILE__, __LINE__, #cond, \
                    orcd_status_name(orcd_last_error()), orcd_last_error_message());         \
            ++g_failures;                                                                    \
        }                                                                                    \
    } while (0)

static const char* path_of(const char* name) {
    static char buf[4352];
    snprintf(buf, sizeof buf, "%s/%s", g_dir, name);
    return buf;
}

static int contains(const char* haystack, const char* needle) { return strstr(haystack, needle) != NULL; }

static uint64_t free_bytes(const orcd_device* dev) {
    orcd_device_info info;
    if (orcd_device_get_info(dev, &info) != ORCD_OK) return 0;
    return info.free_bytes;
}

/* Opening a broken file fails with `want` and a message naming `mentions`. */
static void expect_open_error(const char* name, orcd_status want, const char* mentions) {
    orcd_model* m = (orcd_model*)0x1;
    const orcd_status s = orcd_model_open(path_of(name), &m);
    if (s != want) {
        fprintf(stderr, "%s: expected %s, got %s: %s\n", name, orcd_status_name(want), orcd_status_name(s),
                orcd_last_error_message());
        ++g_failures;
        return;
    }
    CHECK(m == NULL);
    CHECK(orcd_last_error() == want);
    CHECK(contains(orcd_last_error_message(), mentions));
}

typedef struct {
    int chunks, layers, done, cancel_at;
    uint64_t last_bytes;
} progress_log;

static int on_progress(const orcd_progress* p, void* user) {
    progress_log* log = (progress_log*)user;
    if (p->kind == ORCD_PROGRESS_CHUNK) {
        ++log->chunks;
        if (p->bytes_done <= log->last_bytes) ++g_failures;
        log->last_bytes = p->bytes_done;
    } else if (p->kind == ORCD_PROGRESS_LAYER) {
        ++log->layers;
        if (p->layer < 0 || (uint32_t)p->layer >= p->n_layers) ++g_failures;
    } else {
        ++log->done;
    }
    if (p->tensor == NULL || p->tensor[0] == '\0') ++g_failures;
    return log->cancel_at > 0 && log->chunks >= log->cancel_at;
}

static void test_library(void) {
    CHECK(strcmp(orcd_version(), "0.1.0") == 0);
    CHECK(strcmp(orcd_status_name(ORCD_ERR_INSUFFICIENT_VRAM), "INSUFFICIENT_VRAM") == 0);
    CHECK(strcmp(orcd_status_name(ORCD_OK), "OK") == 0);
    CHECK(strcmp(orcd_status_name((orcd_status)12345), "UNKNOWN") == 0);
}

static void test_open_errors(void) {
    orcd_model* m = NULL;
    CHECK(orcd_model_open(NULL, &m) == ORCD_ERR_INVALID_ARGUMENT);
    CHECK(contains(orcd_last_error_message(), "must not be NULL"));
    CHECK(orcd_model_open(path_of("llama.gguf"), NULL) == ORCD_ERR_INVALID_ARGUMENT);
    expect_open_error("absent.gguf", ORCD_ERR_FILE_NOT_FOUND, "absent.gguf");
    expect_open_error("dir.gguf", ORCD_ERR_FILE_UNREADABLE, "not a regular file");
    expect_open_error("not_gguf.gguf", ORCD_ERR_NOT_GGUF, "not_gguf.gguf");
    expect_open_error("version9.gguf", ORCD_ERR_UNSUPPORTED_VERSION, "9");
    expect_open_error("truncated.gguf", ORCD_ERR_TRUNCATED, "past the end");
    expect_open_error("corrupt.gguf", ORCD_ERR_CORRUPT_FILE, "duplicate tensor name");
    expect_open_error("no_block_count.gguf", ORCD_ERR_METADATA_MISSING, "llama.block_count");
    expect_open_error("metadata_type.gguf", ORCD_ERR_METADATA_TYPE, "llama.context_length");
    expect_open_error("mamba.gguf", ORCD_ERR_UNSUPPORTED_ARCHITECTURE, "supported: llama, qwen2, phi3");
    expect_open_error("missing_tensor.gguf", ORCD_ERR_MISSING_TENSOR, "blk.0.attn_v.bias");
    expect_open_error("bad_shape.gguf", ORCD_ERR_TENSOR_SHAPE, "blk.1.attn_q.weight");
    expect_open_error("bad_type.gguf", ORCD_ERR_UNSUPPORTED_TENSOR_TYPE, "Q8_1");
}

static void test_info_and_plan(void) {
    orcd_model* m = NULL;
    CHECK(orcd_model_open(path_of("qwen2.gguf"), &m) == ORCD_OK);
    if (!m) return;
    orcd_model_info info;
    CHECK(orcd_model_get_info(m, &info) == ORCD_OK);
    CHECK(strcmp(info.architecture, "qwen2") == 0);
    CHECK(info.n_layers == 2 && info.n_embd == 64 && info.n_heads == 8 && info.n_kv_heads == 2);
    CHECK(info.head_dim == 8 && info.n_vocab == 300 && info.context_length == 256);
    CHECK(info.rope_neox == 1 && info.output_tied == 1);
    CHECK(info.rope_theta == 1000000.0f);
    CHECK(info.n_tensors == 26);
    CHECK(orcd_model_get_info(m, NULL) == ORCD_ERR_INVALID_ARGUMENT);

    orcd_plan plan;
    CHECK(orcd_model_plan(m, 128, &plan) == ORCD_OK);
    CHECK(plan.n_ctx == 128);
    CHECK(plan.kv_bytes == 2ull * 2 * 128 * 16 * 2);
    CHECK(plan.weight_bytes % 256 == 0 && plan.weight_bytes >= plan.tensor_bytes);
    CHECK(plan.tensor_bytes == info.tensor_bytes);
    CHECK(plan.total_bytes == plan.weight_bytes + plan.kv_bytes + plan.workspace_bytes);
    CHECK(orcd_model_plan(m, 100000, &plan) == ORCD_ERR_INVALID_ARGUMENT);
    CHECK(contains(orcd_last_error_message(), "context_length 256"));
    orcd_model_free(m);
    orcd_model_free(NULL);
}

/* `warmup`: the process's first load also initialises the runtime (on CUDA, lazily loaded kernels keep device memory),
 * so only later loads must give back exactly what they took. */
static void test_load(orcd_device* dev, const char* name, int warmup) {
    orcd_model* m = NULL;
    CHECK(orcd_model_open(path_of(name), &m) == ORCD_OK);
    if (!m) return;
    const uint64_t before = free_bytes(dev);
    progress_log log = {0, 0, 0, 0, 0};
    orcd_load_options o;
    orcd_load_options_init(&o);
    o.n_ctx = 64;
    o.chunk_bytes = 8192;
    o.verify = 1;
    o.progress = on_progress;
    o.user_data = &log;
    orcd_loaded* l = NULL;
    CHECK(orcd_model_load(m, dev, &o, &l) == ORCD_OK);
    orcd_model_free(m); /* the loaded model keeps what it needs */
    if (!l) return;
    orcd_plan plan;
    orcd_vram vram;
    orcd_transfer_stats ts;
    CHECK(orcd_loaded_get_plan(l, &plan) == ORCD_OK);
    CHECK(orcd_loaded_get_vram(l, &vram) == ORCD_OK);
    CHECK(orcd_loaded_get_transfer_stats(l, &ts) == ORCD_OK);
    CHECK(orcd_loaded_resident(l) == 1);
    CHECK(orcd_loaded_vram_bytes(l) == plan.weight_bytes);
    CHECK(vram.weights == plan.weight_bytes && vram.kv_cache == plan.kv_bytes);
    CHECK(vram.workspace == plan.workspace_bytes && vram.total == plan.total_bytes);
    CHECK(ts.bytes == plan.weight_bytes && ts.chunks == (plan.weight_bytes + 8191) / 8192);
    CHECK(log.chunks == (int)ts.chunks && log.done == 1 && log.layers > 0);
    CHECK(before - free_bytes(dev) >= plan.total_bytes);
    CHECK(orcd_loaded_verify(l) == ORCD_OK);
    orcd_loaded_free(l);
    if (!warmup) CHECK(free_bytes(dev) == before);
}

/* Each load-time failure returns its code, names its cause, and leaves the device's free memory as it was. */
static void expect_load_error(orcd_device* dev, const orcd_faults* faults, orcd_load_options* o, orcd_status want,
                              const char* mentions) {
    orcd_model* m = NULL;
    CHECK(orcd_model_open(path_of("llama.gguf"), &m) == ORCD_OK);
    if (!m) return;
    const uint64_t before = free_bytes(dev);
    orcd_faults none;
    orcd_faults_init(&none);
    CHECK(orcd_device_set_faults(dev, faults ? faults : &none) == ORCD_OK);
    orcd_loaded* l = (orcd_loaded*)0x1;
    const orcd_status s = orcd_model_load(m, dev, o, &l);
    if (s != want) {
        fprintf(stderr, "load: expected %s, got %s: %s\n", orcd_status_name(want), orcd_status_name(s),
                orcd_last_error_message());
        ++g_failures;
    } else {
        CHECK(l == NULL);
        CHECK(contains(orcd_last_error_message(), mentions));
    }
    CHECK(orcd_device_set_faults(dev, &none) == ORCD_OK);
    CHECK(free_bytes(dev) == before);
    orcd_model_free(m);
}

static void test_load_errors(orcd_device* dev) {
    orcd_load_options o;
    orcd_faults f;

    orcd_load_options_init(&o);
    o.vram_limit = 1000;
    expect_load_error(dev, NULL, &o, ORCD_ERR_INSUFFICIENT_VRAM, "has 1000 bytes");

    orcd_load_options_init(&o);
    o.n_ctx = 1u << 30;
    expect_load_error(dev, NULL, &o, ORCD_ERR_INVALID_ARGUMENT, "exceeds the model's context_length");

    orcd_load_options_init(&o);
    o.size = 4; /* a caller that skipped orcd_load_options_init */
    expect_load_error(dev, NULL, &o, ORCD_ERR_INVALID_ARGUMENT, "size field");

    orcd_faults_init(&f);
    f.fail_alloc_at = 2;
    expect_load_error(dev, &f, NULL, ORCD_ERR_DEVICE_ALLOC, "KV cache");

    orcd_faults_init(&f);
    f.fail_pinned_alloc_at = 1;
    expect_load_error(dev, &f, NULL, ORCD_ERR_DEVICE_ALLOC, "");

    orcd_faults_init(&f);
    f.fail_transfer_at_byte = 5000;
    orcd_load_options_init(&o);
    o.chunk_bytes = 4096;
    expect_load_error(dev, &f, &o, ORCD_ERR_TRANSFER, "cumulative byte 4096");

    progress_log log = {0, 0, 0, 3, 0};
    orcd_load_options_init(&o);
    o.chunk_bytes = 4096;
    o.progress = on_progress;
    o.user_data = &log;
    expect_load_error(dev, NULL, &o, ORCD_ERR_CANCELLED, "cancelled after");
    CHECK(log.done == 0);

    orcd_faults_init(&f);
    f.corrupt_byte = 100;
    orcd_load_options_init(&o);
    o.verify = 1;
    expect_load_error(dev, &f, &o, ORCD_ERR_VERIFY, "verify failed for 1 of");

    orcd_faults_init(&f);
    f.report_not_resident = 1;
    expect_load_error(dev, &f, NULL, ORCD_ERR_RESIDENCY, "not resident");

    orcd_model* m = NULL;
    CHECK(orcd_model_open(path_of("llama.gguf"), &m) == ORCD_OK);
    orcd_loaded* l = NULL;
    CHECK(orcd_model_load(m, NULL, NULL, &l) == ORCD_ERR_INVALID_ARGUMENT);
    CHECK(orcd_model_load(NULL, dev, NULL, &l) == ORCD_ERR_INVALID_ARGUMENT);
    orcd_model_free(m);
    CHECK(orcd_loaded_resident(NULL) == 0);
    CHECK(orcd_loaded_vram_bytes(NULL) == 0);
    CHECK(orcd_loaded_verify(NULL) == ORCD_ERR_INVALID_ARGUMENT);
}

static void test_devices(void) {
    orcd_device* d = (orcd_device*)0x1;
    CHECK(orcd_device_open_cuda(100000, &d) == ORCD_ERR_NO_DEVICE);
    CHECK(d == NULL);
    CHECK(contains(orcd_last_error_message(), orcd_cuda_device_count() ? "does not exist" : "cannot open GPU 100000"));
    CHECK(orcd_device_open_host(0, NULL) == ORCD_ERR_INVALID_ARGUMENT);
    orcd_device* small = NULL;
    CHECK(orcd_device_open_host(4096, &small) == ORCD_OK);
    orcd_device_info info;
    CHECK(orcd_device_get_info(small, &info) == ORCD_OK);
    CHECK(strcmp(info.kind, "host") == 0 && info.total_bytes == 4096 && info.free_bytes == 4096);
    orcd_model* m = NULL;
    CHECK(orcd_model_open(path_of("phi3.gguf"), &m) == ORCD_OK);
    orcd_loaded* l = NULL;
    CHECK(orcd_model_load(m, small, NULL, &l) == ORCD_ERR_INSUFFICIENT_VRAM);
    CHECK(contains(orcd_last_error_message(), "device 0 (host) has 4096 bytes"));
    orcd_faults f;
    orcd_faults_init(&f);
    f.size = 0;
    CHECK(orcd_device_set_faults(small, &f) == ORCD_ERR_INVALID_ARGUMENT);
    orcd_model_free(m);
    orcd_device_free(small);
    orcd_device_free(NULL);
}

int main(int argc, char** argv) {
    if (argc != 3 || (strcmp(argv[2], "host") != 0 && strcmp(argv[2], "cuda") != 0)) {
        fprintf(stderr, "usage: %s FIXTURE_DIR host|cuda\n", argv[0]);
        return 2;
    }
    snprintf(g_dir, sizeof g_dir, "%s", argv[1]);
    orcd_device* dev = NULL;
    if (strcmp(argv[2], "cuda") == 0) {
        if (orcd_device_open_cuda(0, &dev) != ORCD_OK) {
            printf("SKIP: %s\n", orcd_last_error_message());
            return 77;
        }
    } else if (orcd_device_open_host(1ull << 30, &dev) != ORCD_OK) {
        fprintf(stderr, "cannot open the host device: %s\n", orcd_last_error_message());
        return 1;
    }
    orcd_device_info info;
    if (orcd_device_get_info(dev, &info) == ORCD_OK) printf("device: %s %d (%s)\n", info.kind, info.index, info.name);

    test_library();
    test_open_errors();
    test_info_and_plan();
    test_load(dev, "llama.gguf", 1);
    test_load(dev, "llama.gguf", 0);
    test_load(dev, "qwen2.gguf", 0);
    test_load(dev, "phi3.gguf", 0);
    test_load_errors(dev);
    test_devices();
    orcd_device_free(dev);

    if (g_failures) {
        fprintf(stderr, "%d check(s) failed\n", g_failures);
        return 1;
    }
    printf("all C API checks passed on %s\n", argv[2]);
    return 0;
}
