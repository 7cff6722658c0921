// OpenBLAS's CBLAS interface. Debian: apt-get install libopenblas-dev
#include <cblas.h>
// Thread control is OpenBLAS-specific; declared here so the Swift side can keep BLAS and
// our own parallel loops from oversubscribing the cores.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
