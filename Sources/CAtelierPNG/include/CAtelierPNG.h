// A small C face over libpng's full API for AtelierDiffusion.
//
// libpng reports errors by longjmp-ing out of the failing call. A longjmp must never cross a
// Swift frame (it would skip Swift's cleanup and corrupt reference counts), so every libpng call
// lives in png_shim.c, under a setjmp taken there, and errors come back as a status code plus a
// message. Nothing here includes <png.h>, so Swift never sees libpng's types.

#ifndef ATELIER_PNG_SHIM_H
#define ATELIER_PNG_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ATELIER_PNG_OK = 0,
    /// The first 8 bytes are not the PNG signature.
    ATELIER_PNG_NOT_PNG = 1,
    /// The data ended before the image did.
    ATELIER_PNG_TRUNCATED = 2,
    /// libpng rejected the data (bad CRC, bad zlib stream, invalid header, ...); see message.
    ATELIER_PNG_CORRUPT = 3,
    /// A valid PNG this reader does not handle; see message.
    ATELIER_PNG_UNSUPPORTED = 4,
    /// Larger than the caller's limits (checked before the pixel buffer is allocated).
    ATELIER_PNG_TOO_LARGE = 5,
    ATELIER_PNG_OUT_OF_MEMORY = 6,
    /// Bad arguments to the encoder (size, channels, bit depth, keyword); see message.
    ATELIER_PNG_INVALID_ARGUMENT = 7,
} atelier_png_status;

/// One text chunk as read. `text` is UTF-8 when `is_utf8` (iTXt), otherwise Latin-1 (tEXt, zTXt).
typedef struct {
    char *key;                 /* NUL-terminated keyword, Latin-1 */
    unsigned char *text;       /* not NUL-terminated; use text_length */
    size_t text_length;
    int is_utf8;
    int compressed;
} atelier_png_text;

/// A decoded image. Palette images are expanded to RGB(A), gray below 8 bits is scaled to 8 bits,
/// 16-bit samples are reduced to their high byte except for plain 16-bit grayscale, which is kept
/// (as big-endian sample pairs). These are the mode choices PIL makes when it opens a PNG.
typedef struct {
    uint32_t width;
    uint32_t height;
    int channels;              /* 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA */
    int bit_depth;             /* 8, or 16 only for channels == 1 */
    int source_color_type;     /* IHDR colour type (0, 2, 3, 4, 6) */
    int source_bit_depth;      /* IHDR bit depth (1, 2, 4, 8, 16) */
    int interlaced;
    unsigned char *pixels;     /* height rows of width * channels * bit_depth / 8 bytes, packed */
    size_t pixels_length;
    atelier_png_text *texts;
    int text_count;
    char message[256];         /* human-readable detail when the status is not OK */
} atelier_png_image;

/// Decodes a whole PNG held in memory. Refuses images with a side over `max_dimension` or more
/// than `max_pixels` pixels before allocating them. On any status, call atelier_png_image_free.
atelier_png_status atelier_png_decode(const unsigned char *data, size_t length,
                                      uint32_t max_dimension, uint64_t max_pixels,
                                      atelier_png_image *out);

void atelier_png_image_free(atelier_png_image *image);

/// One text chunk to write: `utf8 == 0` writes tEXt (text must be Latin-1 bytes), otherwise an
/// uncompressed iTXt with empty language tag and translated keyword (as PIL's add_itxt does).
typedef struct {
    const char *key;           /* NUL-terminated, 1-79 printable Latin-1 bytes */
    const unsigned char *text;
    size_t text_length;
    int utf8;
} atelier_png_text_in;

typedef struct {
    unsigned char *data;
    size_t length;
    size_t capacity;
    char message[256];
} atelier_png_buffer;

/// Encodes packed rows (`channels` 1-4, `bit_depth` 8 or 16 with 16-bit samples big-endian)
/// into `out`, a growing memory buffer. Text chunks go before the image data. On any status,
/// call atelier_png_buffer_free.
atelier_png_status atelier_png_encode(const unsigned char *pixels, uint32_t width, uint32_t height,
                                      int channels, int bit_depth,
                                      const atelier_png_text_in *texts, int text_count,
                                      atelier_png_buffer *out);

void atelier_png_buffer_free(atelier_png_buffer *buffer);

#ifdef __cplusplus
}
#endif

#endif
