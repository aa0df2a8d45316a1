// The op vocabulary: every op of graph/ops.cpp names a kernel family that has both an optimized and a
// reference kernel, so an op added to the table cannot run in one implementation only.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "graph/ops.h"
#include "kernels/kernel.h"

TEST_CASE("every op schema has an optimized and a reference kernel") {
  std::set<std::string> families;
  for (const octet::OpSchema& schema : octet::op_schemas()) {
    REQUIRE_MESSAGE(schema.kernel_family != nullptr, schema.name);
    CHECK_MESSAGE(octet::kernels::has_kernel_family(schema.kernel_family),
                  schema.name << ": kernel family '" << schema.kernel_family << "' is not registered");
    families.insert(schema.kernel_family);
  }
  CHECK(families.size() >= 16);  // today's families, each used by at least one op
  CHECK_FALSE(octet::kernels::has_kernel_family("no_such_family"));
}

TEST_CASE("an op outside the table is refused by name") {
  octet::kernels::Engine engine;
  octet::Node node;
  node.name = "n1";
  node.op = "NoSuchOp";
  octet::kernels::KernelContext ctx{node, {}, {}, {}, engine, octet::kernels::Implementation::optimized};
  CHECK_THROWS_WITH_AS(octet::kernels::create_kernel(ctx), doctest::Contains("no kernel for op 'NoSuchOp'"),
                       octet::Error);
}
