/*
 * orcd.h — the C API of worker-orcd, for embedding the model loader from other languages (Rust, Go, Python, ...).
 *
 * Stable and small: opaque handles, plain structs, status codes; no C++ types or exceptions cross it. Every function
 * that can fail returns an orcd_status; on failure, orcd_last_error() and orcd_last_error_message() describe it (per
 * thread, until the next failing call on that thread). Handles are independent: a loaded model keeps what it needs
 * alive, so orcd_model_free / orcd_device_free may be called before orcd_loaded_free.
 *
 * Structs passed in carry their own size (set by the matching *_init function) so that fields can be appended in later
 * versions without breaking callers compiled against this one.
 */
#ifndef ORCD_H
#define ORCD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(ORCD_BUILDING_LIBRARY)
#define ORCD_API __attribute__((visibility("default")))
#else
#define ORCD_API
#endif

#define ORCD_API_VERSION 1

/* Status codes. The values equal orcd::ErrorCode's and never change. */
typedef enum orcd_status {
    ORCD_OK = 0,
    ORCD_ERR_INVALID_ARGUMENT = 1,
    ORCD_ERR_FILE_NOT_FOUND = 2,
    ORCD_ERR_FILE_UNREADABLE = 3,
    ORCD_ERR_NOT_GGUF = 4,
    ORCD_ERR_UNSUPPORTED_VERSION = 5,
    ORCD_ERR_TRUNCATED = 6,
    ORCD_ERR_CORRUPT_FILE = 7,
    ORCD_ERR_METADATA_MISSING = 8,
    ORCD_ERR_METADATA_TYPE = 9,
    ORCD_ERR_UNSUPPORTED_ARCHITECTURE = 10,
    ORCD_ERR_UNSUPPORTED_TENSOR_TYPE = 11,
    ORCD_ERR_MISSING_TENSOR = 12,
    ORCD_ERR_TENSOR_SHAPE = 13,
    ORCD_ERR_INSUFFICIENT_VRAM = 14,
    ORCD_ERR_DEVICE_ALLOC = 15,
    ORCD_ERR_TRANSFER = 16,
    ORCD_ERR_CANCELLED = 17,
    ORCD_ERR_NO_DEVICE = 18,
    ORCD_ERR_DEVICE = 19,
    ORCD_ERR_TOKENIZER = 20,
    ORCD_ERR_CHAT_TEMPLATE = 21,
    ORCD_ERR_CONTEXT_OVERFLOW = 22,
    ORCD_ERR_IO = 23,
    ORCD_ERR_RESIDENCY = 24,
    ORCD_ERR_VERIFY = 25,
    ORCD_ERR_INTERNAL = 99
} orcd_status;

typedef struct orcd_model orcd_model;   /* an opened, validated GGUF model (the file stays mapped) */
typedef struct orcd_device orcd_device; /* a GPU, or the host device (host memory standing in for VRAM) */
typedef struct orcd_loaded orcd_loaded; /* a model resident on a device */

/* --- library ------------------------------------------------------------------------------------------------------ */
ORCD_API const char* orcd_version(void);                   /* "0.1.0" */
ORCD_API const char* orcd_status_name(orcd_status status); /* "INSUFFICIENT_VRAM"; "UNKNOWN" for other values */
ORCD_API orcd_status orcd_last_error(void);                /* ORCD_OK when no call on this thread has failed */
ORCD_API const char* orcd_last_error_message(void);        /* "" when none; valid until the next failing call */

/* --- models ------------------------------------------------------------------------------------------------------- */
typedef struct orcd_model_info {
    char architecture[32]; /* general.architecture: "llama", "qwen2", "phi3" */
    uint32_t n_layers, n_embd, n_ff, n_heads, n_kv_heads, head_dim, n_vocab, context_length, rope_dim;
    float rope_theta, rms_eps;
    int32_t rope_neox;     /* 1: NeoX halves (qwen2, phi3); 0: interleaved pairs (llama) */
    int32_t output_tied;   /* 1: no output.weight, the embedding is reused */
    uint32_t n_tensors;    /* tensors the architecture uses */
    uint64_t tensor_bytes; /* their bytes */
    uint64_t file_bytes;
} orcd_model_info;

/* Maps, parses and validates (architecture, every tensor's presence, shape and type). */
ORCD_API orcd_status orcd_model_open(const char* path, orcd_model** out);
ORCD_API orcd_status orcd_model_get_info(const orcd_model* model, orcd_model_info* out);
ORCD_API void orcd_model_free(orcd_model* model); /* NULL is a no-op */

/* --- devices ------------------------------------------------------------------------------------------------------ */
typedef struct orcd_device_info {
    char kind[8]; /* "cuda" | "host" */
    int32_t index;
    char name[256];
    uint64_t total_bytes, free_bytes;
} orcd_device_info;

ORCD_API int32_t orcd_cuda_device_count(void); /* 0 without a GPU, a driver, or CUDA support in the build */
ORCD_API orcd_status orcd_device_open_cuda(int32_t index, orcd_device** out); /* ORCD_ERR_NO_DEVICE when absent */
/* The host device: `capacity_bytes` of host memory stand in for VRAM (0: 8 GiB). For dry runs and tests. */
ORCD_API orcd_status orcd_device_open_host(uint64_t capacity_bytes, orcd_device** out);
ORCD_API orcd_status orcd_device_get_info(const orcd_device* device, orcd_device_info* out);
ORCD_API void orcd_device_free(orcd_device* device);

/* Test hooks: make the device fail on purpose (both device kinds honour them). Counting restarts at every call. */
typedef struct orcd_faults {
    uint32_t size;
    uint64_t fail_alloc_at;        /* the N-th device allocation fails (1-based; 0 = never) */
    uint64_t fail_pinned_alloc_at; /* the N-th pinned host allocation fails */
    int64_t fail_transfer_at_byte; /* the copy carrying this cumulative byte fails (-1 = never) */
    int64_t corrupt_byte;          /* this cumulative byte arrives inverted (-1 = never) */
    int32_t report_not_resident;   /* residency checks report host memory */
} orcd_faults;
ORCD_API void orcd_faults_init(orcd_faults* faults); /* no faults */
ORCD_API orcd_status orcd_device_set_faults(orcd_device* device, const orcd_faults* faults);

/* --- plan --------------------------------------------------------------------------------------------------------- */
typedef struct orcd_plan {
    uint32_t n_ctx, n_batch;
    uint32_t n_tensors;
    uint64_t tensor_bytes;    /* the tensors' bytes */
    uint64_t weight_bytes;    /* the device arena: tensors + 256-byte alignment padding */
    uint64_t kv_bytes;        /* f16 KV cache for n_ctx tokens */
    uint64_t workspace_bytes; /* runtime scratch */
    uint64_t total_bytes;
} orcd_plan;

/* n_ctx 0: the model's context length. */
ORCD_API orcd_status orcd_model_plan(const orcd_model* model, uint32_t n_ctx, orcd_plan* out);

/* --- loading ------------------------------------------------------------------------------------------------------ */
typedef enum orcd_progress_kind {
    ORCD_PROGRESS_CHUNK = 0,
    ORCD_PROGRESS_LAYER = 1,
    ORCD_PROGRESS_DONE = 2
} orcd_progress_kind;

typedef struct orcd_progress {
    int32_t kind; /* orcd_progress_kind */
    uint64_t bytes_done, bytes_total;
    uint64_t chunk, n_chunks;
    const char* tensor; /* valid during the callback only */
    int32_t layer;      /* -1 outside the blocks */
    uint32_t n_layers;
    double elapsed_s;
} orcd_progress;

/* Called on the loading thread per chunk, per layer and at the end. Return nonzero to cancel the load
 * (orcd_model_load then fails with ORCD_ERR_CANCELLED after releasing everything). */
typedef int (*orcd_progress_fn)(const orcd_progress* progress, void* user_data);

typedef struct orcd_load_options {
    uint32_t size;
    uint32_t n_ctx;       /* 0: the model's context length */
    uint64_t chunk_bytes; /* staging chunk; 0: 256 MiB */
    uint32_t n_buffers;   /* staging buffers in flight; 0: 2 */
    uint64_t vram_limit;  /* cap in bytes; 0: none */
    int32_t verify;       /* nonzero: checksum every tensor on the device against the file */
    orcd_progress_fn progress;
    void* user_data;
} orcd_load_options;
ORCD_API void orcd_load_options_init(orcd_load_options* options);

/* Plans, checks the fit (ORCD_ERR_INSUFFICIENT_VRAM before any allocation), allocates, transfers, checks residency,
 * and verifies when asked. On failure nothing stays allocated. `options` may be NULL (defaults). */
ORCD_API orcd_status orcd_model_load(const orcd_model* model, orcd_device* device, const orcd_load_options* options,
                                     orcd_loaded** out);

typedef struct orcd_vram {
    uint64_t weights, kv_cache, workspace, total;
} orcd_vram;

typedef struct orcd_transfer_stats {
    uint64_t bytes;
    double seconds, gbps;
    uint64_t chunks, staging_bytes;
    uint32_t n_buffers;
} orcd_transfer_stats;

ORCD_API int32_t orcd_loaded_resident(const orcd_loaded* loaded);    /* 1 resident, 0 not (or NULL) */
ORCD_API uint64_t orcd_loaded_vram_bytes(const orcd_loaded* loaded); /* weight bytes == the plan's weight_bytes */
ORCD_API orcd_status orcd_loaded_get_vram(const orcd_loaded* loaded, orcd_vram* out);
ORCD_API orcd_status orcd_loaded_get_plan(const orcd_loaded* loaded, orcd_plan* out);
ORCD_API orcd_status orcd_loaded_get_transfer_stats(const orcd_loaded* loaded, orcd_transfer_stats* out);
ORCD_API orcd_status orcd_loaded_verify(const orcd_loaded* loaded); /* ORCD_ERR_VERIFY on a mismatch */
ORCD_API void orcd_loaded_free(orcd_loaded* loaded);

#ifdef __cplusplus
}
#endif

#endif /* ORCD_H */
