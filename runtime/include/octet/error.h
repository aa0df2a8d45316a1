// octet::Error: the one exception type the library throws. Messages name the file, node and field at fault.
#pragma once
#include <stdexcept>
#include <string>

namespace octet {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace octet
