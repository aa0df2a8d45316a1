// Bar charts drawn by gnuplot (a separate process, so they belong to the tools, not the libraries).
#pragma once

#include <string>
#include <vector>

#include "converters/analysis/sensitivity.h"

namespace octet::tools {

// Grouped bars: one group per category, one bar per series (values[series][category]).
struct BarChart {
  std::string title, ylabel;
  std::vector<std::string> categories, series;
  std::vector<std::vector<double>> values;
  bool log_y = false;
  bool vertical_labels = false;  // category names rotated (many or long names)
};
// Draws `chart` with gnuplot into `path`, SVG or PNG by its extension. Throws Error for another
// extension, mismatched sizes, or when gnuplot is missing or fails (Debian package gnuplot-nox).
void write_bar_chart(const BarChart& chart, const std::string& path);
// The extension of `path`, lowercased, with its dot (".svg").
std::string lowercase_extension(const std::string& path);
// The ranking's noise shares (both kinds, in % of the all-INT8 noise power) as a bar chart.
BarChart sensitivity_chart(const analysis::SensitivityReport& report, const std::string& title, size_t max_layers = 0);

}  // namespace octet::tools
