// Markdown templates with named placeholders: the report's prose lives in a .md file beside the code
// (report/RESULTS.template.md) and the code fills in what it measured. A placeholder is {{name}}: a name of
// letters, digits and underscores between double braces.
#pragma once

#include <map>
#include <string>

namespace octet::tools {

// `text` with every {{name}} replaced by values.at(name), inserted verbatim (not scanned again). Throws
// octet::Error naming `template_name` and the placeholder when the text has a placeholder with no value, or
// a value names no placeholder of the text (a renamed placeholder would otherwise drop its part silently).
std::string fill_template(const std::string& text, const std::map<std::string, std::string>& values,
                          const std::string& template_name);

// The same, reading the template from `path` (an octet::Error names it when it cannot be read).
std::string fill_template_file(const std::string& path, const std::map<std::string, std::string>& values);

}  // namespace octet::tools
