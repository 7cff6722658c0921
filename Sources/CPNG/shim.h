// libpng. Debian: apt-get install libpng-dev
#if !__has_include(<png.h>)
#error "libpng not found: run `apt-get install libpng-dev` (or bash scripts/setup.sh)"
#endif
#include <png.h>
