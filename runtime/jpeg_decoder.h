// JPEG decoding with libjpeg-turbo, set up as PIL decodes JPEGs, so preprocessed inputs match PyTorch/PIL
// pipelines (stb_image's JPEG decoder rounds chroma upsampling differently: up to 3 levels near colour
// edges). Internal to the runtime; the public entry points are in octet/image.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "octet/image.h"

namespace octet {

// True if `data` starts with a JPEG SOI marker followed by another marker (FF D8 FF).
bool is_jpeg(const uint8_t* data, size_t size);

// Decodes a JPEG to 8-bit RGB with PIL's settings (libjpeg defaults: accurate integer IDCT, fancy chroma
// upsampling). Grayscale becomes three equal channels; 4-component (CMYK or YCCK) JPEGs are read as
// PIL reads them, as Adobe-inverted CMYK, and converted to RGB with PIL's formula. Throws Error naming
// `name` for undecodable or truncated data (PIL too refuses truncated files unless LOAD_TRUNCATED_IMAGES),
// an unsupported colour space, or a header claiming a size check_image_dimensions refuses (checked before
// decompression allocates anything). Corrupt-data warnings that PIL ignores are ignored here too.
Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name);

// Throws Error naming `name` if width x height has no pixels or exceeds kMaxImageSide / kMaxImagePixels.
// Shared by the JPEG and stb_image decoders; defined in image.cpp.
void check_image_dimensions(int64_t width, int64_t height, const std::string& name);

}  // namespace octet
