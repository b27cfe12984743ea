#pragma once
// The single column's decode step as one persistent kernel (issue 19: a token's cost in bytes, not launches). The
// kernel chain of decode_step.h runs 11 dependent kernels a layer; on the H100 each costs ~3 us whatever it computes,
// which is 90 % of a Qwen2.5-0.5B token (docs/PERF.md). Here one cooperative launch of a few blocks per SM walks every
// layer: the same work in the same order (norm + quantize, QKV matvec, RoPE + KV store, attention partials, their
// combination, quantize, O matvec, norm + quantize, gate/up matvec, quantize, down matvec; then the final norm and the
// LM head), in phases separated by grid-wide barriers instead of kernel boundaries: 9 a layer, because the blocks that
// combine a head, or write a 32-row group of the gate/up output, quantize it themselves. While a block waits at a
// barrier, its rows of the next matrix are already streaming into L2.
//
// Measured (docs/PERF.md, 2026-12-05): 10-14 % slower than the chain, so the chain stays the default. A barrier costs
// ~1.5 us, about what programmatic dependent launch leaves of a kernel boundary; the phases themselves, each a chain
// of dependent memory round trips, take ~4.5 us a block whatever synchronizes them. This is the base for the next
// attempt: weights staged in shared memory ahead of their phase, and fewer dependent phases.
//
// Batch invariance: every phase runs the chain's own device functions (matvec_q8_rows.cuh, attention_decode.cuh,
// rope_store.cuh) with the chain's parameters (the matvec's threads per row, the attention's chunks), and an output's
// bits depend on those alone, not on which block computes it: the logits are bit-identical to the chain's, so a
// request's tokens do not depend on whether it decoded alone (tests/backend_cuda/test_decode_persistent.cpp).
//
// It runs int8 activations only, every matrix of a type with a dp4a kernel, head dimensions of whole 32-blocks and no
// q/k norm; the backend refuses a model it cannot run (persistent_decode_refusal) when asked for it by
// CudaOptions::decode_kernel.
#include <cstdint>
#include <cuda_runtime_api.h>

#include <string>

#include "backend/cuda/cuda_model.h"
#include "backend/cuda/decode_step.h"

namespace orcd::backend::cuda {

// Why the persistent step cannot run `m` with activations `act`, naming what is missing; empty when it can.
std::string persistent_decode_refusal(const CudaModel& m, Activations act);

// Shared memory the step's blocks need beyond their static part (the attention's queries and scores).
size_t persistent_decode_smem_bytes(const model::Config& c);

// Device bytes of the step's tables for config `c` (DecodeBuffers::plan reserves them when asked for).
uint64_t persistent_decode_bytes(const model::Config& c);

// Writes the step's tables for `m` over the buffers `b` and the KV pool view `kv` into b.persistent and sets
// b.persistent_blocks (synchronous, and it queries the device: call it outside any graph capture, after the buffers
// are bound). Throws as q8_matvec's argument checks.
void upload_persistent_decode(const CudaModel& m, DecodeBuffers& b, const KvCache& kv);

// Enqueues the step for column 0 of `b` (its token, position and page table): the embedding, the persistent kernel
// and the argmax into b.argmax, with the logits in b.logits, as enqueue_decode does for one column.
void enqueue_persistent_decode(const CudaModel& m, const DecodeBuffers& b, cudaStream_t stream);

}  // namespace orcd::backend::cuda
