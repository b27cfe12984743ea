#pragma once
// Launch-shape facts about the current CUDA device, queried once per process and cached, so that a decode step
// captured into a CUDA graph makes launches only (no runtime queries inside the capture). Shared by the kernels
// whose grid sizes or shared memory depend on them (matvec.cu, matvec_fused.cu, matvec_q8.cu, matvec_q8_mma.cu,
// sample.cu).
namespace orcd::device {

// Streaming multiprocessors of the device current at the first call (every GPU of one worker is the same model; only
// grid shapes depend on it). 132 (an H100 SXM) when the query fails.
int sm_count();

// The most shared memory one block may opt in to (cudaDevAttrMaxSharedMemoryPerBlockOptin), and one SM's
// (cudaDevAttrMaxSharedMemoryPerMultiprocessor), in bytes. An H100's 227 KiB / 228 KiB when the query fails.
int shared_bytes_per_block_optin();
int shared_bytes_per_sm();

}  // namespace orcd::device
