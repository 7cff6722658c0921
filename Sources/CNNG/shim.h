// nng 1.5. Debian: apt-get install libnng-dev
#if !__has_include(<nng/nng.h>)
#error "libnng not found: run `apt-get install libnng-dev` (or bash scripts/setup.sh)"
#endif
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/supplemental/util/platform.h>
