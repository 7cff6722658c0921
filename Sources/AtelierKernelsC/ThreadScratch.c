// Per-thread packing buffers, kept between calls: allocating megabytes per GEMM would cost page
// faults on every call (glibc hands large blocks back to the OS on free).

#include <stdlib.h>
#include "AtelierKernelsC.h"

static _Thread_local float *buffers[15];
static _Thread_local size_t capacities[15];

float *ak_thread_scratch(int slot, size_t floats) {
    if (slot < 0 || slot > 14) return NULL;
    if (floats == 0) floats = 1;
    if (capacities[slot] < floats) {
        free(buffers[slot]);
        void *p = NULL;
        // Round up so that repeated slightly larger requests do not reallocate every time.
        size_t want = floats + floats / 4;
        if (posix_memalign(&p, 64, want * sizeof(float)) != 0) {
            buffers[slot] = NULL;
            capacities[slot] = 0;
            return NULL;
        }
        buffers[slot] = p;
        capacities[slot] = want;
    }
    return buffers[slot];
}

long ak_next_task(long *counter) { return __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED); }

void ak_thread_scratch_release(int slot) {
    if (slot < 0 || slot > 14) return;
    free(buffers[slot]);
    buffers[slot] = NULL;
    capacities[slot] = 0;
}
