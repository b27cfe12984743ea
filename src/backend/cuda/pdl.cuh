#pragma once
// Programmatic dependent launch (PDL, sm_90): a decode step is a chain of ~250 short kernels, each of which used to
// start only after its predecessor had fully drained, then paid its own launch and block dispatch. A kernel launched
// with launch_pdl may instead be scheduled while its predecessor still runs: its blocks do what needs nothing from
// the predecessor (a matvec streams its weight rows into L2), then wait in pdl_wait() until the predecessor has
// completed and its writes are visible. The arithmetic is untouched, so no bit changes.
//
// The rule that keeps it correct: a kernel launched with launch_pdl calls pdl_wait() before it reads anything an
// earlier kernel writes and before it writes anything (an earlier kernel may still read it). Completion is
// transitive: once pdl_wait() returns, the predecessor has completed, and it could not complete before its own
// pdl_wait() returned. Each such kernel calls pdl_trigger() right after its pdl_wait(), so that the next kernel's
// blocks are scheduled during its run (not earlier: at most two kernels share the SMs). A kernel launched without the
// attribute (or on a device below sm_90) runs both as no-ops.
#include <cuda_runtime.h>

#include <utility>

#include "backend/cuda/tuning.h"
#include "device/cuda_check.h"

namespace orcd::cuda {

// Blocks until the grids this one depends on have completed and their memory is visible.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

// Lets the next kernel launched with launch_pdl in this stream be scheduled once every block of this grid has
// called it (or exited).
__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// Fills `attr` with the programmatic-serialization attribute (off when ORCD_PDL=0) and returns how many it wrote.
inline unsigned pdl_attribute(cudaLaunchAttribute* attr) {
    attr->id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr->val.programmaticStreamSerializationAllowed = tuning::pdl() ? 1 : 0;
    return 1;
}

// kernel<<<grid, block, smem, s>>>(args...), launched so that it may overlap its predecessor's tail; the kernel must
// follow the rule above. Throws on a launch error.
template <typename... KernelArgs, typename... Args>
void launch_pdl(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, Args&&... args) {
    cudaLaunchConfig_t config{};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = smem;
    config.stream = s;
    cudaLaunchAttribute attr[1];
    config.attrs = attr;
    config.numAttrs = pdl_attribute(attr);
    ORCD_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

}  // namespace orcd::cuda
