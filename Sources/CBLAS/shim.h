// OpenBLAS's CBLAS interface. Debian: apt-get install libopenblas-dev
#if !__has_include(<cblas.h>)
#error "OpenBLAS (cblas.h) not found: run `apt-get install libopenblas-dev` (or bash scripts/setup.sh)"
#endif
#include <cblas.h>
// Thread control is OpenBLAS-specific; declared here so the Swift side can keep BLAS and
// our own parallel loops from oversubscribing the cores.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
