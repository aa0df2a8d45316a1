// Layout conversion between two descriptions of the same logical tensor (e.g. a user's NCHW buffer and
// the arena's NHWC copy). One oneDNN reorder primitive, created at Prepare.
#include "kernels/dnnl_common.h"

namespace octet::kernels {
namespace {

class DnnlReorder : public DnnlKernel {
 public:
  DnnlReorder(const TensorDesc& src, const TensorDesc& dst, Engine& engine) : DnnlKernel(engine) {
    if (src.dims != dst.dims)
      throw Error("reorder between different shapes " + shape_str(src.dims) + " and " + shape_str(dst.dims));
    dnnl::memory::desc src_md = to_md(src), dst_md = to_md(dst);
    dnnl::reorder::primitive_desc pd(engine_->engine, src_md, engine_->engine, dst_md, base_attr());
    set_primitive(dnnl::reorder(pd), pd);
    map_input(0, DNNL_ARG_FROM, src_md);
    map_output(0, DNNL_ARG_TO, dst_md);
  }
};

}  // namespace

std::unique_ptr<Kernel> create_reorder(const TensorDesc& src, const TensorDesc& dst, Engine& engine) {
  try {
    return std::make_unique<DnnlReorder>(src, dst, engine);
  } catch (const dnnl::error& e) {
    throw Error(std::string("oneDNN could not create a reorder: ") + e.what());
  }
}

}  // namespace octet::kernels
