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
#include <nng/supplemental/tls/tls.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/pk.h>

// What `atelier_tls_check_files` found wrong (0: nothing).
enum {
    ATELIER_TLS_OK = 0,
    ATELIER_TLS_BAD_CA = 1,       // the CA file holds no certificate mbed TLS can parse
    ATELIER_TLS_BAD_CERT = 2,     // the certificate file holds no parsable certificate
    ATELIER_TLS_BAD_KEY = 3,      // the key file holds no parsable (unencrypted) private key
    ATELIER_TLS_KEY_MISMATCH = 4, // the key is not the certificate's
    ATELIER_TLS_NOT_SIGNED = 5,   // the certificate does not chain to the CA (or is expired, …)
};

// Checks a (CA, certificate, key) triple of PEM files the way the TLS handshake will, so a
// mistake is reported by name at startup instead of as an opaque handshake failure later.
// `*mbed_error` gets mbed TLS's error code, `*verify_flags` the chain check's flags.
static inline int atelier_tls_check_files(const char *ca_path, const char *cert_path, const char *key_path,
                                          int *mbed_error, uint32_t *verify_flags) {
    mbedtls_x509_crt ca, cert;
    mbedtls_pk_context key;
    int result = ATELIER_TLS_OK, rv;
    mbedtls_x509_crt_init(&ca);
    mbedtls_x509_crt_init(&cert);
    mbedtls_pk_init(&key);
    *mbed_error = 0;
    *verify_flags = 0;
    if ((rv = mbedtls_x509_crt_parse_file(&ca, ca_path)) != 0) {
        result = ATELIER_TLS_BAD_CA;
    } else if ((rv = mbedtls_x509_crt_parse_file(&cert, cert_path)) != 0) {
        result = ATELIER_TLS_BAD_CERT;
    } else if ((rv = mbedtls_pk_parse_keyfile(&key, key_path, NULL)) != 0) {
        result = ATELIER_TLS_BAD_KEY;
    } else if ((rv = mbedtls_pk_check_pair(&cert.pk, &key)) != 0) {
        result = ATELIER_TLS_KEY_MISMATCH;
    } else if ((rv = mbedtls_x509_crt_verify(&cert, &ca, NULL, NULL, verify_flags, NULL, NULL)) != 0) {
        result = ATELIER_TLS_NOT_SIGNED;
    }
    *mbed_error = rv;
    mbedtls_pk_free(&key);
    mbedtls_x509_crt_free(&cert);
    mbedtls_x509_crt_free(&ca);
    return result;
}
