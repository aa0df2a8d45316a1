// JPEG decoding with libjpeg-turbo, matching PIL; the contract is in jpeg_decoder.h.
#include "runtime/jpeg_decoder.h"

#include <csetjmp>
#include <cstdio>  // before jpeglib.h, which uses FILE without including <stdio.h>
#include <vector>

#include <jerror.h>
#include <jpeglib.h>

namespace octet {
namespace {

// libjpeg reports errors through error_exit, whose default prints the message and calls exit(). Ours
// longjmps back to the setjmp in JpegDecompressor::succeeded instead. The jump skips only libjpeg's C
// frames and the frame of a lambda that owns nothing with a destructor, so no C++ object is left
// undestroyed (the condition under which longjmp is defined in C++).
struct JpegErrorManager {
  jpeg_error_mgr manager;  // first member: libjpeg's pointer to it is also a pointer to the whole struct
  std::jmp_buf jump;
};

[[noreturn]] void jump_to_handler(j_common_ptr info) {
  std::longjmp(reinterpret_cast<JpegErrorManager*>(info->err)->jump, 1);
}

// libjpeg pads a truncated file with gray and only warns (JWRN_JPEG_EOF); PIL refuses truncated files
// (unless ImageFile.LOAD_TRUNCATED_IMAGES), so that warning is an error here. So are the warnings about
// corrupt entropy-coded data, which libjpeg "recovers" from by filling the rest of the image with whatever
// it resynchronizes to: a JPEG with 200 bytes of 0xFF mid-scan was classified silently, while PIL refuses
// it. Benign warnings stay silent, as in PIL: extraneous bytes before a marker (common in camera files),
// unknown JFIF revisions, Adobe transform codes, odd progression parameters. Trace messages (level >= 0) are dropped.
bool is_corrupt_data_warning(int code) {
  return code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_MUST_RESYNC || code == JWRN_HUFF_BAD_CODE;
}

void on_message(j_common_ptr info, int msg_level) {
  if (msg_level < 0 && is_corrupt_data_warning(info->err->msg_code)) info->err->error_exit(info);
}

// A libjpeg decompressor that is destroyed with its owner and turns libjpeg errors into octet::Error.
class JpegDecompressor {
 public:
  explicit JpegDecompressor(const std::string& name) : name_(name) {
    info.err = jpeg_std_error(&errors_.manager);
    errors_.manager.error_exit = jump_to_handler;
    errors_.manager.emit_message = on_message;
    // A failed create leaves nothing allocated, so throwing before the destructor is armed leaks nothing.
    run([this] { jpeg_create_decompress(&info); });
  }
  ~JpegDecompressor() { jpeg_destroy_decompress(&info); }  // also aborts an unfinished decompression
  JpegDecompressor(const JpegDecompressor&) = delete;
  JpegDecompressor& operator=(const JpegDecompressor&) = delete;

  // Runs `step`, a lambda making libjpeg calls on `info` that must own no object with a destructor (a
  // libjpeg error skips its frame). Throws Error naming the file if libjpeg fails.
  template <typename Step>
  void run(Step step) {
    if (!succeeded(step)) throw Error(failure());
  }

  jpeg_decompress_struct info{};

 private:
  // The setjmp sits in a frame of its own that holds no objects, which the jump returns to.
  template <typename Step>
  bool succeeded(Step& step) {
    if (setjmp(errors_.jump)) return false;
    step();
    return true;
  }

  std::string failure() {
    char text[JMSG_LENGTH_MAX];
    errors_.manager.format_message(reinterpret_cast<j_common_ptr>(&info), text);
    const bool truncated = errors_.manager.msg_code == JWRN_JPEG_EOF;
    return name_ + ": cannot decode JPEG: " + text + (truncated ? " (the file is truncated)" : "");
  }

  std::string name_;
  JpegErrorManager errors_{};
};

// PIL reads every 4-component JPEG as Adobe-style inverted CMYK (JpegImagePlugin's rawmode "CMYK;I",
// "assume adobe conventions") and converts CMYK to RGB as R = (255 - K) - (255 - K) * C / 255, divided
// with its MULDIV255 rounding (libImaging/Convert.c cmyk2rgb). In the stored values C' = 255 - C and
// K' = 255 - K that is R = K' - K' * (255 - C') / 255; G and B likewise from M' and Y'.
void inverted_cmyk_to_rgb(const uint8_t* cmyk, uint8_t* rgb, size_t pixels) {
  for (size_t i = 0; i < pixels; ++i, cmyk += 4, rgb += 3) {
    const int white = cmyk[3];  // K' = 255 - K
    for (int c = 0; c < 3; ++c) {
      const int product = (255 - cmyk[c]) * white + 128;
      rgb[c] = uint8_t(white - (((product >> 8) + product) >> 8));
    }
  }
}

}  // namespace

bool is_jpeg(const uint8_t* data, size_t size) {
  return size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
}

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  JpegDecompressor jpeg(name);
  jpeg_decompress_struct& info = jpeg.info;
  jpeg.run([&] {
    jpeg_mem_src(&info, data, static_cast<unsigned long>(size));
    jpeg_read_header(&info, TRUE);
  });
  check_image_dimensions(info.image_width, info.image_height, name);
  const J_COLOR_SPACE stored = info.jpeg_color_space;
  const bool four_components = stored == JCS_CMYK || stored == JCS_YCCK;
  if (!four_components && stored != JCS_GRAYSCALE && stored != JCS_YCbCr && stored != JCS_RGB)
    throw Error(name + ": cannot decode JPEG: unsupported colour space with " + std::to_string(info.num_components) +
                " components");
  info.out_color_space = four_components ? JCS_CMYK : JCS_RGB;  // libjpeg converts YCCK to CMYK, gray to RGB
  // libjpeg's defaults, which PIL keeps (it changes them only in draft mode); set explicitly so that a
  // libjpeg built with other defaults still decodes as PIL does.
  info.dct_method = JDCT_ISLOW;
  info.do_fancy_upsampling = TRUE;

  Image image;
  image.width = int(info.image_width);
  image.height = int(info.image_height);
  image.rgb.resize(size_t(image.width) * size_t(image.height) * 3);
  std::vector<uint8_t> cmyk_row(four_components ? size_t(image.width) * 4 : 0);
  jpeg.run([&] {
    jpeg_start_decompress(&info);
    // jpeg_mem_src never suspends, so every call returns one row. jpeg_finish_decompress is not called:
    // once every row is read, what follows cannot change the image (PIL ignores a failure there too).
    while (info.output_scanline < info.output_height) {
      uint8_t* rgb_row = image.rgb.data() + size_t(info.output_scanline) * size_t(image.width) * 3;
      JSAMPROW row = four_components ? cmyk_row.data() : rgb_row;
      jpeg_read_scanlines(&info, &row, 1);
      if (four_components) inverted_cmyk_to_rgb(cmyk_row.data(), rgb_row, size_t(image.width));
    }
  });
  return image;
}

}  // namespace octet
