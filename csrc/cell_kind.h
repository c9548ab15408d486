// The cells fused_rnn knows. Kept free of ATen so that the SIMD translation units
// (cpu/pointwise_*.cpp) can include it before choosing their instruction set.
#pragma once

#include <cstdint>

namespace fused_rnn {

enum class CellKind { kLstm = 0, kGru = 1, kRnnTanh = 2, kRnnRelu = 3 };

inline int64_t gate_count(CellKind cell) {
  switch (cell) {
    case CellKind::kLstm: return 4;
    case CellKind::kGru: return 3;
    default: return 1;
  }
}

}  // namespace fused_rnn
