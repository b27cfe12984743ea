#pragma once
// Geometry the K-quant super-block formats (q2_k.h .. q8_k.h) share.
namespace orcd::quant {

inline constexpr int kQK_K = 256;       // elements per K-quant super-block
inline constexpr int kKScaleSize = 12;  // bytes of packed 6-bit scales/mins in Q3_K, Q4_K and Q5_K

}  // namespace orcd::quant
