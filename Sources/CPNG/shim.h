// libpng. Debian: apt-get install libpng-dev
#include <png.h>
