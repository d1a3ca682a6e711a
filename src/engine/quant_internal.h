/* engine/quant_internal.h: field decoders of the K-quant blocks shared by the codecs (quant.c)
 * and the CPU kernels that read the same blocks (engine/cpu/). Internal to the library; the
 * layouts are described at the top of quant.c. */
#ifndef HS_ENGINE_QUANT_INTERNAL_H
#define HS_ENGINE_QUANT_INTERNAL_H

#include <stdint.h>

/* The 6-bit scale and min of sub-block s (0..7) from the 12 packed bytes of a Q4_K / Q5_K block. */
void hs_quant_q4k_scale_min(const uint8_t *scales12, int s, int *scale, int *min);

/* The sixteen 6-bit scales (0..63, standing for scale - 32) from a Q3_K block's 12 packed bytes. */
void hs_quant_q3k_scales(const uint8_t *scales12, int sc[16]);

/* The 6-bit scale (0..63, standing for scale - 32) of sub-block s (0..7) of an IQ4_XS block. */
int hs_quant_iq4xs_scale(const uint8_t *block, int s);

#endif
