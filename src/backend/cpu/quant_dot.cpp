// Scalar kernels (the fallback and the reference the AVX2 kernels are tested against), activation quantization and
// the run-time dispatch.
#include "backend/cpu/quant_dot.h"

#include <cpuid.h>
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/half.h"
#include "quant/formats.h"

namespace orcd::backend::cpu {

using gguf::TensorType;

namespace detail {

void quantize_activation_scalar(const float* x, int64_t n, ActBlock* out) {
    for (int64_t b = 0; b < n / kActBlock; ++b) {
        const float* xb = x + b * kActBlock;
        float amax = 0.f;
        for (int j = 0; j < kActBlock; ++j) amax = std::max(amax, std::fabs(xb[j]));
        const float d = amax / 127.f;
        const float id = amax > 0.f ? 127.f / amax : 0.f;
        ActBlock& o = out[b];
        o.d = d;
        int s[2] = {0, 0};
        for (int j = 0; j < kActBlock; ++j) {
            // nearbyint rounds half to even, as _mm256_round_ps(_MM_FROUND_TO_NEAREST_INT) does in the AVX2 path.
            const int q = static_cast<int>(std::nearbyint(xb[j] * id));
            o.q[j] = static_cast<int8_t>(q);
            s[j / 16] += q;
        }
        o.sum[0] = static_cast<int16_t>(s[0]);
        o.sum[1] = static_cast<int16_t>(s[1]);
    }
}

}  // namespace detail

namespace {

// One kernel per type from its format's unpack32: per chunk, integer dot per half, then scale and minimum.
template <typename F>
float dot_scalar1(const std::byte* row, const ActBlock* x, int64_t n) {
    constexpr int kChunks = F::kBlockElems / kActBlock;
    const int64_t n_blocks = n / F::kBlockElems;
    float acc = 0.f;
    quant::Chunk32 k;
    for (int64_t i = 0; i < n_blocks; ++i) {
        // Copied out: rows sit in mapped files at offsets that need not suit the block's alignment.
        typename F::Block b;
        std::memcpy(&b, row + i * static_cast<int64_t>(sizeof(b)), sizeof(b));
        for (int c = 0; c < kChunks; ++c, ++x) {
            F::unpack32(b, c, k);
            int isum[2] = {0, 0};
            for (int l = 0; l < 32; ++l) isum[l / 16] += k.u[l] * x->q[l];
            acc += x->d * (k.sc[0] * static_cast<float>(isum[0]) + k.sc[1] * static_cast<float>(isum[1]) -
                           k.mn[0] * static_cast<float>(x->sum[0]) - k.mn[1] * static_cast<float>(x->sum[1]));
        }
    }
    return acc;
}

// The scalar path has no unpack to share between columns: one column at a time.
template <typename F>
void dot_scalar(const std::byte* row, const ActColumns& x, int nc, int64_t n, float* out) {
    for (int c = 0; c < nc; ++c) out[c] = dot_scalar1<F>(row, x.blocks + c * x.stride, n);
}

float dot_f32_scalar(const std::byte* row, const float* x, int64_t n) {
    const auto* w = reinterpret_cast<const float*>(row);
    float acc = 0.f;
    for (int64_t j = 0; j < n; ++j) acc += w[j] * x[j];
    return acc;
}
float f16_at(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return fp16_to_fp32(h);
}

float dot_f16_scalar(const std::byte* row, const float* x, int64_t n) {
    const auto* w = reinterpret_cast<const uint8_t*>(row);
    float acc = 0.f;
    for (int64_t j = 0; j < n; ++j) acc += f16_at(w + 2 * j) * x[j];
    return acc;
}
float dot_bf16_scalar(const std::byte* row, const float* x, int64_t n) {
    const auto* w = reinterpret_cast<const uint8_t*>(row);
    float acc = 0.f;
    for (int64_t j = 0; j < n; ++j) {
        uint16_t h;
        std::memcpy(&h, w + 2 * j, 2);
        acc += bf16_to_fp32(h) * x[j];
    }
    return acc;
}

// One column at a time, as the quantized scalar path.
template <float (*Dot)(const std::byte*, const float*, int64_t)>
void float_cols(const std::byte* row, const float* x, int64_t stride, int nc, int64_t n, float* out) {
    for (int c = 0; c < nc; ++c) out[c] = Dot(row, x + c * stride, n);
}

}  // namespace

namespace detail {

QuantDotFn quant_dot_scalar(TensorType t) {
    QuantDotFn fn = nullptr;
    quant::visit_format(t, [&](auto f) {
        if constexpr (quant::HasCpuDot<decltype(f)>) fn = dot_scalar<decltype(f)>;
    });
    return fn;
}

FloatDotFn float_dot_scalar(TensorType t) {
    switch (t) {
        case TensorType::F32: return float_cols<dot_f32_scalar>;
        case TensorType::F16: return float_cols<dot_f16_scalar>;
        case TensorType::BF16: return float_cols<dot_bf16_scalar>;
        default: return nullptr;
    }
}

}  // namespace detail

Isa detected_isa() {
    static const Isa isa = [] {
        __builtin_cpu_init();
        // F16C through CPUID (leaf 1, ECX bit 29): clang 14's __builtin_cpu_supports does not know "f16c".
        unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
        const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
        const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
        // GCC's check of AVX-512 features also asks the OS (XGETBV) whether it saves the AVX-512 state.
        const bool vnni = avx2 && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
        return vnni ? Isa::Avx512Vnni : avx2 ? Isa::Avx2 : Isa::Scalar;
    }();
    return isa;
}

void quantize_activation(const float* x, int64_t n, ActBlock* out) {
    if (detected_isa() != Isa::Scalar) {
        detail::quantize_activation_avx2(x, n, out);
    } else {
        detail::quantize_activation_scalar(x, n, out);
    }
}

void ActBuffer::resize(int64_t n_cols, int64_t n) {
    blocks_ = n / kActBlock;
    const auto total = static_cast<size_t>(n_cols * blocks_);
    if (act_.size() < total) {
        act_.resize(total);
        d_.resize(total);
        dsum_.resize(total);
        dsum16_.resize(2 * total);
        qt_.resize(32 * total);
        sum128_.resize(total);
    }
}

void ActBuffer::quantize(int64_t c, const float* x, Isa isa) {
    const int64_t nb = blocks_;
    ActBlock* a = act_.data() + c * nb;
    if (isa != Isa::Scalar) {
        detail::quantize_activation_avx2(x, nb * kActBlock, a);
    } else {
        detail::quantize_activation_scalar(x, nb * kActBlock, a);
    }
    float* d = d_.data() + c * nb;
    float* dsum = dsum_.data() + c * nb;
    float* dsum16 = dsum16_.data() + 2 * c * nb;
    int32_t* sum128 = sum128_.data() + c * nb;
    for (int64_t j = 0; j < nb; ++j) {
        sum128[j] = 128 * (a[j].sum[0] + a[j].sum[1]);
        d[j] = a[j].d;
        dsum[j] = a[j].d * static_cast<float>(a[j].sum[0] + a[j].sum[1]);
        dsum16[2 * j] = a[j].d * static_cast<float>(a[j].sum[0]);
        dsum16[2 * j + 1] = a[j].d * static_cast<float>(a[j].sum[1]);
    }
    // Group g, vector m, lane j (4 bytes): bytes 4m..4m+3 of block 8g + j (quant_dot.h, ActColumns::qt).
    int8_t* qt = qt_.data() + 32 * c * nb;
    for (int64_t g = 0; g < nb / 8; ++g) {
        for (int m = 0; m < 8; ++m) {
            for (int j = 0; j < 8; ++j) std::memcpy(qt + (8 * g + m) * 32 + 4 * j, a[8 * g + j].q + 4 * m, 4);
        }
    }
}

ActColumns ActBuffer::columns(int64_t c) const {
    return {act_.data() + c * blocks_,
            d_.data() + c * blocks_,
            dsum_.data() + c * blocks_,
            dsum16_.data() + 2 * c * blocks_,
            qt_.data() + 32 * c * blocks_,
            sum128_.data() + c * blocks_,
            blocks_};
}

bool uses_quantized_activation(TensorType t) { return detail::quant_dot_scalar(t) != nullptr; }
bool dot_supported(TensorType t) {
    return detail::quant_dot_scalar(t) != nullptr || detail::float_dot_scalar(t) != nullptr;
}

QuantDotFn quant_dot_fn(TensorType t, Isa isa) {
    switch (isa) {
        case Isa::Avx512Vnni: return detail::quant_dot_vnni(t);
        case Isa::Avx2: return detail::quant_dot_avx2(t);
        case Isa::Scalar: break;
    }
    return detail::quant_dot_scalar(t);
}
FloatDotFn float_dot_fn(TensorType t, Isa isa) {
    return isa == Isa::Scalar ? detail::float_dot_scalar(t) : detail::float_dot_avx2(t);
}

}  // namespace orcd::backend::cpu
