#include "converters/tools/charts.h"

#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>

namespace octet::tools {

using analysis::SensitivityReport;

std::string lowercase_extension(const std::string& path) {
  std::string extension = std::filesystem::path(path).extension().string();
  for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return extension;
}

namespace {

std::string format(const char* format, double value) {
  char text[64];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

// A string as a gnuplot literal: single quotes, a quote doubled.
std::string gnuplot_string(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("''") : std::string(1, c);
  return quoted + "'";
}

}  // namespace

void write_bar_chart(const BarChart& chart, const std::string& path) {
  const std::string extension = lowercase_extension(path);
  if (extension != ".svg" && extension != ".png")
    throw Error("plot '" + path + "': the file name must end in .svg or .png");
  if (chart.values.size() != chart.series.size())
    throw Error("plot '" + path + "': values for a different number of series");
  for (const std::vector<double>& row : chart.values)
    if (row.size() != chart.categories.size())
      throw Error("plot '" + path + "': values for a different number of categories");
  const size_t bars = std::max<size_t>(1, chart.categories.size() * chart.series.size());
  size_t longest_label = 0;  // rotated labels take height from the plot
  for (const std::string& category : chart.categories) longest_label = std::max(longest_label, category.size());
  const int width = int(std::clamp<size_t>(240 + 16 * bars, 640, 2400));
  const int height = 420 + (chart.vertical_labels ? int(7 * std::min<size_t>(longest_label, 80)) : 40);
  std::string script = extension == ".svg" ? "set terminal svg size " : "set terminal pngcairo size ";
  script += std::to_string(width) + "," + std::to_string(height) + " font 'sans,11' background rgb 'white'\n";
  script += "set termoption noenhanced\nset output " + gnuplot_string(path) + "\n";
  script += "set title " + gnuplot_string(chart.title) + "\nset ylabel " + gnuplot_string(chart.ylabel) + "\n";
  script += "set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.85 border -1\n";
  script += "set grid ytics\nset key outside top center horizontal\nset xtics nomirror\n";
  if (chart.vertical_labels) script += "set xtics rotate by 90 right\n";
  if (chart.log_y) script += "set logscale y\n";
  script += "$values << EOD\n";
  for (size_t c = 0; c < chart.categories.size(); ++c) {
    std::string name = chart.categories[c];
    std::replace(name.begin(), name.end(), '"', '\'');
    script += "\"" + name + "\"";
    for (const std::vector<double>& row : chart.values)
      script += std::isfinite(row[c]) ? format(" %.6g", row[c]) : " NaN";
    script += "\n";
  }
  script += "EOD\nplot";
  for (size_t s = 0; s < chart.series.size(); ++s)
    script += std::string(s ? "," : "") + " $values using " + std::to_string(s + 2) + (s ? "" : ":xtic(1)") +
              " title " + gnuplot_string(chart.series[s]);
  script += "\n";

  // A path gnuplot cannot write is named as such, not blamed on a missing gnuplot.
  const std::filesystem::path folder = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!folder.empty() && !std::filesystem::is_directory(folder, ec))
    throw Error("plot '" + path + "': folder '" + folder.string() + "' does not exist");
  if (std::filesystem::is_directory(path, ec)) throw Error("plot '" + path + "': is a folder; give a file name");
  std::FILE* gnuplot = popen("gnuplot 2>/dev/null", "w");
  if (!gnuplot) throw Error("plot '" + path + "': cannot start gnuplot");
  std::fwrite(script.data(), 1, script.size(), gnuplot);
  const int status = pclose(gnuplot);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127)  // the shell found no gnuplot
    throw Error("plot '" + path + "': gnuplot is not installed (Debian: apt-get install gnuplot-nox)");
  if (status != 0 || !std::filesystem::exists(path))
    throw Error("plot '" + path + "': gnuplot failed (exit status " +
                std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + "); is the file writable?");
}

BarChart sensitivity_chart(const SensitivityReport& report, const std::string& title, size_t max_layers) {
  const size_t count = max_layers ? std::min(max_layers, report.layers.size()) : report.layers.size();
  BarChart chart;
  chart.title = title;
  chart.ylabel = "% of the all-INT8 logit noise power";
  chart.series = {"added by the layer alone (only it INT8)", "removed by keeping it FP32 (all others INT8)"};
  chart.values.resize(2);
  chart.vertical_labels = true;
  for (size_t i = 0; i < count; ++i) {
    chart.categories.push_back(report.layers[i].node);
    chart.values[0].push_back(100 * report.layers[i].noise_share_alone);
    chart.values[1].push_back(100 * report.layers[i].noise_share_removed);
  }
  return chart;
}

}  // namespace octet::tools
