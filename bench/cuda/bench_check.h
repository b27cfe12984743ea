#pragma once
// The bench/cuda programs' check of a CUDA runtime call inside main(): print the call and the error, return 1. (The
// library's ORCD_CUDA_CHECK throws an orcd::Error instead, which a program with no handler would end by terminate.)
#include <cuda_runtime_api.h>

#include <cstdio>

#define CHECK(x)                                                         \
    do {                                                                 \
        cudaError_t e = (x);                                             \
        if (e != cudaSuccess) {                                          \
            std::fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e)); \
            return 1;                                                    \
        }                                                                \
    } while (0)
