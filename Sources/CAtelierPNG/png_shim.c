// libpng behind a setjmp boundary; see include/CAtelierPNG.h for why this file exists.
//
// Rules kept throughout:
// - every libpng call that can fail runs after the setjmp of the function that made it;
// - locals assigned after that setjmp and read in the error branch are volatile;
// - everything the caller receives lives in its struct and is released by the *_free functions,
//   so the error branch only cleans up what is private to this file.

#include "CAtelierPNG.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MESSAGE_SIZE 256

static void set_message(char *dst, const char *msg) {
    snprintf(dst, MESSAGE_SIZE, "%s", msg != NULL ? msg : "unknown libpng error");
}

/// Records the first error (later ones tend to be consequences) and unwinds to the setjmp.
static void on_error(png_structp png, png_const_charp msg) {
    char *dst = (char *)png_get_error_ptr(png);
    if (dst != NULL && dst[0] == '\0') {
        set_message(dst, msg);
    }
    png_longjmp(png, 1);
}

/// libpng's default prints warnings to stderr; a library must not, and nothing here needs them.
static void on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

// MARK: - Reading

typedef struct {
    const unsigned char *data;
    size_t length;
    size_t offset;
    int ran_out;
} reader_state;

static void read_data(png_structp png, png_bytep dst, size_t count) {
    reader_state *r = (reader_state *)png_get_io_ptr(png);
    if (count > r->length - r->offset) {
        r->ran_out = 1;
        png_error(png, "the file ends before the image does");
    }
    memcpy(dst, r->data + r->offset, count);
    r->offset += count;
}

/// Copies the text chunks libpng collected into `info` (libpng frees its own copies).
static void collect_texts(png_structp png, png_infop info, atelier_png_image *out) {
    png_textp text = NULL;
    int count = png_get_text(png, info, &text, NULL);
    if (count <= 0 || text == NULL) {
        return;
    }
    atelier_png_text *grown = realloc(out->texts, (size_t)(out->text_count + count) * sizeof *grown);
    if (grown == NULL) {
        png_error(png, "out of memory reading text chunks");
    }
    out->texts = grown;
    for (int i = 0; i < count; i++) {
        int itxt = text[i].compression == PNG_ITXT_COMPRESSION_NONE ||
                   text[i].compression == PNG_ITXT_COMPRESSION_zTXt;
        size_t length = itxt ? text[i].itxt_length : text[i].text_length;
        atelier_png_text *t = &out->texts[out->text_count];
        memset(t, 0, sizeof *t);
        const char *key = text[i].key != NULL ? text[i].key : "";
        t->key = malloc(strlen(key) + 1);
        t->text = malloc(length > 0 ? length : 1);
        if (t->key == NULL || t->text == NULL) {
            free(t->key);
            free(t->text);
            png_error(png, "out of memory reading text chunks");
        }
        memcpy(t->key, key, strlen(key) + 1);
        if (length > 0 && text[i].text != NULL) {
            memcpy(t->text, text[i].text, length);
        } else {
            length = 0;
        }
        t->text_length = length;
        t->is_utf8 = itxt;
        t->compressed = text[i].compression == PNG_TEXT_COMPRESSION_zTXt ||
                        text[i].compression == PNG_ITXT_COMPRESSION_zTXt;
        out->text_count += 1;
    }
}

atelier_png_status atelier_png_decode(const unsigned char *data, size_t length,
                                      uint32_t max_dimension, uint64_t max_pixels,
                                      atelier_png_image *out) {
    memset(out, 0, sizeof *out);
    if (data == NULL || length < 8 || png_sig_cmp((png_const_bytep)data, 0, 8) != 0) {
        set_message(out->message, "missing PNG signature");
        return ATELIER_PNG_NOT_PNG;
    }

    reader_state *reader = calloc(1, sizeof *reader);
    if (reader == NULL) {
        set_message(out->message, "out of memory");
        return ATELIER_PNG_OUT_OF_MEMORY;
    }
    reader->data = data;
    reader->length = length;

    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, out->message, on_error, on_warning);
    png_infop info = png != NULL ? png_create_info_struct(png) : NULL;
    png_infop end_info = png != NULL ? png_create_info_struct(png) : NULL;
    if (png == NULL || info == NULL || end_info == NULL) {
        png_destroy_read_struct(&png, &info, &end_info);
        free(reader);
        set_message(out->message, "out of memory starting libpng");
        return ATELIER_PNG_OUT_OF_MEMORY;
    }

    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        atelier_png_status status = reader->ran_out ? ATELIER_PNG_TRUNCATED : ATELIER_PNG_CORRUPT;
        free(rows);
        png_destroy_read_struct(&png, &info, &end_info);
        free(reader);
        return status;
    }

    png_set_read_fn(png, reader, read_data);
    // Our own limits below give a clearer answer than libpng's default 1,000,000-pixel cap.
    png_set_user_limits(png, 0x7fffffffU, 0x7fffffffU);
    png_read_info(png, info);

    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    out->width = width;
    out->height = height;
    out->source_color_type = color_type;
    out->source_bit_depth = bit_depth;
    out->interlaced = interlace != PNG_INTERLACE_NONE;

    if (width > max_dimension || height > max_dimension || (uint64_t)width * height > max_pixels) {
        snprintf(out->message, MESSAGE_SIZE, "%ux%u pixels exceeds the limit (%u per side, %llu in all)",
                 (unsigned)width, (unsigned)height, (unsigned)max_dimension, (unsigned long long)max_pixels);
        png_destroy_read_struct(&png, &info, &end_info);
        free(reader);
        return ATELIER_PNG_TOO_LARGE;
    }

    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_set_palette_to_rgb(png);
    }
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) {
        png_set_expand_gray_1_2_4_to_8(png);
    }
    if (bit_depth == 16 && color_type != PNG_COLOR_TYPE_GRAY) {
        // PIL opens 16-bit colour as 8-bit by keeping the high byte; strip_16 does the same.
        png_set_strip_16(png);
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    int depth = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if ((depth != 8 && depth != 16) || (depth == 16 && channels != 1) || channels < 1 || channels > 4 ||
        rowbytes != (size_t)width * (size_t)channels * (size_t)(depth / 8)) {
        snprintf(out->message, MESSAGE_SIZE, "colour type %d at %d bits decodes to an unexpected layout",
                 color_type, bit_depth);
        png_destroy_read_struct(&png, &info, &end_info);
        free(reader);
        return ATELIER_PNG_UNSUPPORTED;
    }
    out->channels = channels;
    out->bit_depth = depth;

    out->pixels_length = rowbytes * height;
    out->pixels = malloc(out->pixels_length > 0 ? out->pixels_length : 1);
    rows = malloc((size_t)height * sizeof(png_bytep));
    if (out->pixels == NULL || rows == NULL) {
        png_error(png, "out of memory for the pixel buffer");
    }
    for (png_uint_32 y = 0; y < height; y++) {
        rows[y] = out->pixels + (size_t)y * rowbytes;
    }
    png_read_image(png, rows);
    png_read_end(png, end_info);

    collect_texts(png, info, out);
    collect_texts(png, end_info, out);

    free(rows);
    png_destroy_read_struct(&png, &info, &end_info);
    free(reader);
    return ATELIER_PNG_OK;
}

void atelier_png_image_free(atelier_png_image *image) {
    if (image == NULL) {
        return;
    }
    for (int i = 0; i < image->text_count; i++) {
        free(image->texts[i].key);
        free(image->texts[i].text);
    }
    free(image->texts);
    free(image->pixels);
    image->texts = NULL;
    image->text_count = 0;
    image->pixels = NULL;
    image->pixels_length = 0;
}

// MARK: - Writing

static void write_data(png_structp png, png_bytep src, size_t count) {
    atelier_png_buffer *b = (atelier_png_buffer *)png_get_io_ptr(png);
    if (count > SIZE_MAX - b->length) {
        png_error(png, "encoded image too large");
    }
    size_t need = b->length + count;
    if (need > b->capacity) {
        size_t capacity = b->capacity > 0 ? b->capacity : 65536;
        while (capacity < need) {
            capacity = capacity > SIZE_MAX / 2 ? need : capacity * 2;
        }
        unsigned char *grown = realloc(b->data, capacity);
        if (grown == NULL) {
            png_error(png, "out of memory for the encoded image");
        }
        b->data = grown;
        b->capacity = capacity;
    }
    memcpy(b->data + b->length, src, count);
    b->length = need;
}

static void flush_data(png_structp png) {
    (void)png;
}

atelier_png_status atelier_png_encode(const unsigned char *pixels, uint32_t width, uint32_t height,
                                      int channels, int bit_depth,
                                      const atelier_png_text_in *texts, int text_count,
                                      atelier_png_buffer *out) {
    memset(out, 0, sizeof *out);
    if (pixels == NULL || width == 0 || height == 0 || width > 0x7fffffffU || height > 0x7fffffffU ||
        channels < 1 || channels > 4 || (bit_depth != 8 && bit_depth != 16) || text_count < 0 ||
        (text_count > 0 && texts == NULL)) {
        set_message(out->message, "invalid image size, channel count or bit depth");
        return ATELIER_PNG_INVALID_ARGUMENT;
    }
    for (int i = 0; i < text_count; i++) {
        // png_set_text measures text with strlen, so it must be NUL-terminated and NUL-free.
        if (texts[i].key == NULL || texts[i].text == NULL || texts[i].text[texts[i].text_length] != 0 ||
            memchr(texts[i].text, 0, texts[i].text_length) != NULL) {
            set_message(out->message, "text chunk is not a NUL-terminated string without NUL bytes");
            return ATELIER_PNG_INVALID_ARGUMENT;
        }
    }

    static const int color_types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                       PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    size_t rowbytes = (size_t)width * (size_t)channels * (size_t)(bit_depth / 8);

    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, out->message, on_error, on_warning);
    png_infop info = png != NULL ? png_create_info_struct(png) : NULL;
    if (png == NULL || info == NULL) {
        png_destroy_write_struct(&png, &info);
        set_message(out->message, "out of memory starting libpng");
        return ATELIER_PNG_OUT_OF_MEMORY;
    }

    png_textp volatile text = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(text);
        png_destroy_write_struct(&png, &info);
        return ATELIER_PNG_INVALID_ARGUMENT;
    }

    png_set_write_fn(png, out, write_data, flush_data);
    png_set_IHDR(png, info, width, height, bit_depth, color_types[channels], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (text_count > 0) {
        text = calloc((size_t)text_count, sizeof(png_text));
        if (text == NULL) {
            png_error(png, "out of memory for text chunks");
        }
        for (int i = 0; i < text_count; i++) {
            text[i].compression = texts[i].utf8 ? PNG_ITXT_COMPRESSION_NONE : PNG_TEXT_COMPRESSION_NONE;
            text[i].key = (png_charp)texts[i].key;
            text[i].text = (png_charp)texts[i].text;
            text[i].lang = NULL;
            text[i].lang_key = NULL;
        }
        png_set_text(png, info, text, text_count);  // copies
        free(text);
        text = NULL;
    }
    png_write_info(png, info);
    for (uint32_t y = 0; y < height; y++) {
        png_write_row(png, (png_const_bytep)(pixels + (size_t)y * rowbytes));
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return ATELIER_PNG_OK;
}

void atelier_png_buffer_free(atelier_png_buffer *buffer) {
    if (buffer == NULL) {
        return;
    }
    free(buffer->data);
    buffer->data = NULL;
    buffer->length = 0;
    buffer->capacity = 0;
}
