// The pointwise passes for any CPU (ATen's generic Vectorized, no special instructions).
#define FUSED_RNN_CAPABILITY_NS cap_default
#include "pointwise_impl.h"
