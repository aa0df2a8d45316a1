// RESULTS.md and its plots from the report's measurements. The prose is RESULTS.template.md beside this file;
// this file fills its placeholders with the tables, the per-model conclusions and the run's facts. Every number,
// and the facts of every conclusion, come from the measurements; the conclusions' wording follows fixed rules: a
// Top-1 difference counts only outside its noise band (paired_top1).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>

#include "converters/tools/markdown_template.h"
#include "report.h"

namespace report {

const VariantResult& ModelResults::variant(const std::string& name) const {
  for (const VariantResult& v : variants)
    if (v.name == name) return v;
  throw octet::Error(title + " has no variant '" + name + "'");
}

namespace {

std::string fmt(const char* format, double value) {
  char text[64];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

// A generated part of the template, without the trailing blank lines the template itself writes.
std::string block(std::string text) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

std::string mb(size_t bytes) { return fmt("%.2f MB", double(bytes) / 1e6); }

// Top-1 of `v` against `baseline` on the same images. The difference comes from the images exactly one of
// the two classifies correctly (gained g, lost l); were there no real difference each would be a coin flip,
// so 2 sqrt(g + l) / n is the ~95% band of (g - l) / n (McNemar's test, normal approximation).
struct Paired {
  double delta_pp, band_pp;
  size_t discordant;  // g + l
  bool significant() const { return std::abs(delta_pp) > band_pp; }
};

Paired paired_top1(const ModelResults& m, const VariantResult& v, const VariantResult& baseline) {
  size_t gained = 0, lost = 0;
  for (size_t i = 0; i < m.labels.size(); ++i) {
    const bool right = v.eval.predictions[i] == m.labels[i],
               baseline_right = baseline.eval.predictions[i] == m.labels[i];
    gained += right && !baseline_right;
    lost += !right && baseline_right;
  }
  const double n = double(m.labels.size());
  return {100 * (double(gained) - double(lost)) / n, 200 * std::sqrt(double(gained + lost)) / n, gained + lost};
}

std::string top1(const VariantResult& v) { return fmt("%.2f%%", 100 * v.eval.top1); }

// "58.22% (+0.55 ± 1.10)", the difference in percentage points; "(identical)" for the same predictions.
std::string top1_versus(const ModelResults& m, const VariantResult& v, const VariantResult& baseline) {
  const Paired p = paired_top1(m, v, baseline);
  return top1(v) + (p.discordant == 0 ? std::string(" (identical)")
                                      : " (" + fmt("%+.2f", p.delta_pp) + fmt(" ± %.2f)", p.band_pp));
}

std::string fidelity(const VariantResult& v) {
  if (!v.eval.has_reference) return "reference";
  return fmt("%.2f dB", v.eval.sqnr_db) + fmt(" / %.1f%%", 100 * v.eval.top1_agreement);
}

// A markdown table; the first row is the header, the first column left-aligned.
std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::string text;
  for (size_t r = 0; r < rows.size(); ++r) {
    text += "|";
    for (const std::string& cell : rows[r]) text += " " + cell + " |";
    text += "\n";
    if (r == 0) {
      text += "|";
      for (size_t c = 0; c < rows[0].size(); ++c) text += c ? "---:|" : "---|";
      text += "\n";
    }
  }
  return text + "\n";
}

// Variants as rows; per model its Top-1 against `baseline` (labelled models) and SQNR / agreement with FP32.
std::string comparison_table(const std::vector<ModelResults>& models, const std::vector<std::string>& names,
                             const std::string& baseline) {
  std::vector<std::vector<std::string>> rows = {{"variant"}};
  for (const ModelResults& m : models) {
    if (m.has_labels) rows[0].push_back(m.title + " Top-1");
    rows[0].push_back(m.title + " logit SQNR / agreement");
  }
  for (const std::string& name : names) {
    std::vector<std::string> row = {name};
    for (const ModelResults& m : models) {
      const VariantResult& v = m.variant(name);
      if (m.has_labels)
        row.push_back(name == baseline || name == kFp32 ? top1(v) : top1_versus(m, v, m.variant(baseline)));
      row.push_back(fidelity(v));
    }
    rows.push_back(row);
  }
  return "Top-1 in parentheses: the difference from " + baseline + " in percentage points ± its noise band.\n\n" +
         table(rows);
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) s += (i ? ", " : "") + names[i];
  return s;
}

// The rule's reading of one option against the baseline: a Top-1 change counts outside its noise band, an
// SQNR change beyond 1 dB.
struct Verdict {
  std::vector<std::string> losses, gains;            // labelled models with a real Top-1 loss / gain
  size_t sqnr_lower = 0, sqnr_higher = 0;            // models with the SQNR lower / higher by more than 1 dB
  double sqnr_min = INFINITY, sqnr_max = -INFINITY;  // the range of the SQNR changes
  bool preferred(size_t models) const { return losses.empty() && (!gains.empty() || sqnr_higher == models); }
};

std::string verdict_clause(const std::string& option, const Verdict& v, size_t models) {
  const std::string sqnr_range = fmt("%+.1f", v.sqnr_min) + fmt(" to %+.1f dB", v.sqnr_max);
  if (!v.losses.empty())
    return option + " loses Top-1 beyond noise on " + joined(v.losses) +
           (v.gains.empty() ? "" : ", gains on " + joined(v.gains));
  if (!v.gains.empty()) return option + " gains Top-1 beyond noise on " + joined(v.gains) + " and loses on none";
  if (v.sqnr_lower == models)
    return option + ": no Top-1 change beyond noise, but a lower SQNR on every model (" + sqnr_range + ")";
  if (v.sqnr_higher == models)
    return option + ": no Top-1 change beyond noise and a higher SQNR on every model (" + sqnr_range + ")";
  return option + ": no Top-1 change beyond noise, SQNR " + sqnr_range;
}

// One bullet: how `name` compares with `baseline` on every model.
std::string option_summary(const std::vector<ModelResults>& models, const std::string& name,
                           const std::string& baseline, Verdict& verdict) {
  std::string text = "- **" + name + "** vs " + baseline + ":";
  for (const ModelResults& m : models) {
    const VariantResult &v = m.variant(name), &b = m.variant(baseline);
    const double sqnr_change = v.eval.sqnr_db - b.eval.sqnr_db;
    verdict.sqnr_min = std::min(verdict.sqnr_min, sqnr_change);
    verdict.sqnr_max = std::max(verdict.sqnr_max, sqnr_change);
    verdict.sqnr_lower += sqnr_change < -1;
    verdict.sqnr_higher += sqnr_change > 1;
    text += " " + m.title + " ";
    if (m.has_labels) {
      const Paired p = paired_top1(m, v, b);
      text += top1(v) + " vs " + top1(b) + " (" +
              (p.discordant == 0
                   ? std::string("identical predictions")
                   : fmt("%+.2f pp, ", p.delta_pp) + (p.significant() ? fmt("outside the ±%.2f noise band", p.band_pp)
                                                                      : fmt("within ±%.2f", p.band_pp))) +
              fmt("), SQNR %+.1f dB;", sqnr_change);
      if (p.significant()) (p.delta_pp < 0 ? verdict.losses : verdict.gains).push_back(m.title);
    } else {
      text += fmt("SQNR %.2f", v.eval.sqnr_db) + fmt(" vs %.2f dB", b.eval.sqnr_db) + fmt(" (%+.1f dB)", sqnr_change) +
              fmt(", agreement %.0f%%", 100 * v.eval.top1_agreement) + fmt(" vs %.0f%%.", 100 * b.eval.top1_agreement);
    }
  }
  return text + "\n";
}

// Bullets for each option against the baseline and the rule's recommendation: prefer an option with no real
// Top-1 loss and either a real gain or a higher SQNR on every model; otherwise keep the baseline.
std::string conclusions(const std::vector<ModelResults>& models, const std::vector<std::string>& options,
                        const std::string& baseline) {
  std::string text = "**Conclusions.**\n\n", clauses;
  std::vector<std::string> preferred;
  for (const std::string& option : options) {
    Verdict v;
    text += option_summary(models, option, baseline, v);
    clauses += "  - " + verdict_clause(option, v, models.size()) + ".\n";
    if (v.preferred(models.size())) preferred.push_back(option);
  }
  text += "- Verdict: " + (preferred.empty() ? "keep " + baseline : "prefer " + joined(preferred)) + ".\n" + clauses;
  return text + "\n";
}

// ---- plots --------------------------------------------------------------------------------------------

// One group per variant, one bar per model that `metric` has a value for (NaN: left out).
octet::tools::BarChart variant_chart(const std::vector<ModelResults>& models, const std::vector<std::string>& names,
                                     const std::string& title, const std::string& ylabel,
                                     const std::function<double(const ModelResults&, const VariantResult&)>& metric) {
  octet::tools::BarChart chart;
  chart.title = title;
  chart.ylabel = ylabel;
  chart.categories = names;
  chart.vertical_labels = true;
  for (const ModelResults& m : models) {
    std::vector<double> values;
    for (const std::string& name : names) values.push_back(metric(m, m.variant(name)));
    if (std::any_of(values.begin(), values.end(), [](double v) { return std::isfinite(v); })) {
      chart.series.push_back(m.title);
      chart.values.push_back(values);
    }
  }
  return chart;
}

std::string image_link(const std::string& file, const std::string& what) {
  return "![" + what + "](results/" + file + ")\n\n";
}

// ---- sections -----------------------------------------------------------------------------------------

std::string summary(const std::vector<ModelResults>& models) {
  std::vector<std::vector<std::string>> rows = {{"model", "FP32 Top-1", "INT8 Top-1 (Δ pp ± noise)",
                                                 "logit SQNR / agreement", "ms/image FP32 → INT8 (1 thread, CPU time)",
                                                 "file FP32 → INT8", "peak RSS FP32 → INT8"}};
  for (const ModelResults& m : models) {
    const VariantResult &f = m.variant(kFp32), &q = m.variant(kDefault);
    rows.push_back({m.title, m.has_labels ? top1(f) : "n/a", m.has_labels ? top1_versus(m, q, f) : "n/a", fidelity(q),
                    fmt("%.2f", f.footprint.cpu_ms) + fmt(" → %.2f", q.footprint.cpu_ms) +
                        fmt(" (%.2f×)", f.footprint.cpu_ms / q.footprint.cpu_ms),
                    mb(f.footprint.file_bytes) + " → " + mb(q.footprint.file_bytes),
                    mb(f.footprint.peak_rss_bytes) + " → " + mb(q.footprint.peak_rss_bytes)});
  }
  return table(rows);
}

// Top-1 / Top-5 (or, without labels, logit SQNR / agreement) for each range method with per-channel and
// per-tensor weights: the grid the INT8 issue asks for.
std::string method_grid_table(const std::vector<ModelResults>& models) {
  struct Row {
    std::string method, per_channel, per_tensor;
  };
  const std::vector<Row> grid = {{"minmax", kDefault, kPerTensor},
                                 {"percentile 99.99", kPercentile, kPerTensorPercentile},
                                 {"entropy", kEntropy, kPerTensorEntropy},
                                 {"mse", kMse, kPerTensorMse}};
  std::vector<std::vector<std::string>> rows = {{"range method"}};
  for (const ModelResults& m : models) {
    rows[0].push_back(m.title + " per-channel");
    rows[0].push_back(m.title + " per-tensor");
  }
  const auto cell = [](const ModelResults& m, const VariantResult& v) {
    return m.has_labels ? fmt("%.2f%%", 100 * v.eval.top1) + fmt(" / %.2f%%", 100 * v.eval.top5) : fidelity(v);
  };
  std::vector<std::string> fp32_row = {"FP32"};
  for (const ModelResults& m : models) {
    const VariantResult& f = m.variant(kFp32);
    fp32_row.push_back(m.has_labels ? cell(m, f) : "reference");
    fp32_row.push_back(m.has_labels ? cell(m, f) : "reference");
  }
  rows.push_back(fp32_row);
  for (const Row& r : grid) {
    std::vector<std::string> row = {r.method};
    for (const ModelResults& m : models) {
      row.push_back(cell(m, m.variant(r.per_channel)));
      row.push_back(cell(m, m.variant(r.per_tensor)));
    }
    rows.push_back(row);
  }
  return table(rows);
}

// Range change and Top-1 (or fidelity) by calibration image count.
std::string count_table(const std::vector<ModelResults>& models, const RunInfo& run) {
  const size_t full = run.calibration_counts.back();
  std::vector<std::vector<std::string>> rows = {{"calibration images"}};
  for (const ModelResults& m : models) {
    rows[0].push_back(m.title + " range change");
    rows[0].push_back(m.has_labels ? m.title + " Top-1" : m.title + " logit SQNR / agreement");
  }
  for (size_t count : run.calibration_counts) {
    const std::string name = count == full ? kDefault : calibration_count_name(count);
    std::vector<std::string> row = {std::to_string(count)};
    for (const ModelResults& m : models) {
      const VariantResult& v = m.variant(name);
      row.push_back(fmt("%.1f%%", 100 * v.range_change));
      row.push_back(m.has_labels ? (count == full ? top1(v) : top1_versus(m, v, m.variant(kDefault))) : fidelity(v));
    }
    rows.push_back(row);
  }
  return table(rows);
}

std::string count_conclusions(const std::vector<ModelResults>& models, const RunInfo& run) {
  const size_t full = run.calibration_counts.back();
  std::vector<std::string> options;
  for (size_t count : run.calibration_counts)
    if (count != full) options.push_back(calibration_count_name(count));
  std::string text = conclusions(models, options, kDefault);
  // The smallest count matching the full set everywhere: Top-1 within noise, SQNR within 1 dB.
  for (const std::string& option : options) {
    const bool matches = std::all_of(models.begin(), models.end(), [&](const ModelResults& m) {
      const VariantResult &v = m.variant(option), &b = m.variant(kDefault);
      return (!m.has_labels || !paired_top1(m, v, b).significant()) && std::abs(v.eval.sqnr_db - b.eval.sqnr_db) <= 1;
    });
    if (matches) {
      text +=
          "- The smallest count that matches the full set on every model (Top-1 within noise, SQNR within 1 dB): **" +
          option + "**.\n";
      break;
    }
    if (option == options.back())
      text += "- No smaller count matches the full set on every model (Top-1 within noise and SQNR within 1 dB).\n";
  }
  for (const ModelResults& m : models) {
    const bool pinned = std::all_of(options.begin(), options.end(),
                                    [&](const std::string& o) { return m.variant(o).range_change == 0; });
    if (pinned)
      text += "- " + m.title +
              ": every quantized activation range is the same from 1 image on (bounded activations such as ReLU6 "
              "reach their bounds on any image), so the calibration set acts only through bias correction's channel "
              "means.\n";
  }
  return text + "\n";
}

// Fills sensitivity_by_model (per model: the top-10 table, its chart, the auto-fp32 choice) and
// sensitivity_conclusions, and writes the charts.
void sensitivity_parts(const std::vector<ModelResults>& models, const std::string& results_dir,
                       std::map<std::string, std::string>& parts) {
  std::string text, bullets = "**Conclusions.**\n\n";
  for (const ModelResults& m : models) {
    const octet::analysis::SensitivityReport& s = m.sensitivity;
    const std::string chart = "sensitivity_" + m.key + ".svg";
    octet::tools::write_bar_chart(octet::tools::sensitivity_chart(s, m.title + ": per-layer INT8 sensitivity (" +
                                                                         std::to_string(s.images) + " images)"),
                                  results_dir + "/" + chart);
    text += "### " + m.title + "\n\n" + std::to_string(s.layers.size()) + " INT8 layers, " + std::to_string(s.images) +
            " calibration images; all INT8: " + fmt("SQNR %.2f dB", s.all_int8.sqnr_db) +
            fmt(", agreement %.1f%%.", 100 * s.all_int8.top1_agreement) + " Top 10:\n\n";
    std::vector<std::vector<std::string>> rows = {{"rank", "layer", "only this INT8: SQNR / agreement",
                                                   "all INT8 but this: SQNR / agreement", "noise added alone",
                                                   "noise removed"}};
    for (size_t i = 0; i < std::min<size_t>(10, s.layers.size()); ++i) {
      const octet::analysis::LayerSensitivity& l = s.layers[i];
      rows.push_back(
          {std::to_string(i + 1), "`" + l.node + "`",
           fmt("%.2f dB", l.only_this_int8.sqnr_db) + fmt(" / %.0f%%", 100 * l.only_this_int8.top1_agreement),
           fmt("%.2f dB", l.all_but_this_int8.sqnr_db) + fmt(" / %.0f%%", 100 * l.all_but_this_int8.top1_agreement),
           fmt("%.1f%%", 100 * l.noise_share_alone), fmt("%.1f%%", 100 * l.noise_share_removed)});
    }
    text += table(rows) + image_link(chart, m.title + " sensitivity");
    const octet::analysis::AutoFp32Result& a = m.auto_fp32;
    std::string chosen;
    for (const std::string& layer : a.fp32_layers) chosen += (chosen.empty() ? "`" : ", `") + layer + "`";
    text += "auto-fp32 99: " + (a.reached ? "" : std::string("**not reached**; ")) +
            std::to_string(a.fp32_layers.size()) + " layer(s) FP32" + (chosen.empty() ? "" : " (" + chosen + ")") +
            "; agreement on the calibration images by layers kept FP32:";
    for (size_t k = 0; k < a.steps.size(); ++k)
      text += fmt(" %.0f:", double(k)) + fmt(" %.0f%%", 100 * a.steps[k].top1_agreement);
    text += ".\n\n";
    const octet::analysis::LayerSensitivity& top = s.layers.front();
    double top3 = 0;
    for (size_t i = 0; i < std::min<size_t>(3, s.layers.size()); ++i) top3 += s.layers[i].noise_share_removed;
    const VariantResult &auto_model = m.variant(kAutoFp32), &default_model = m.variant(kDefault);
    const std::string choice =
        a.reached ? "auto-fp32 99 kept " + std::to_string(a.fp32_layers.size()) + " of " +
                        std::to_string(s.layers.size()) + " layers FP32"
                  : "auto-fp32 99 did not reach 99%: with all " + std::to_string(s.layers.size()) +
                        " layers FP32 only the classifier's s8 weights stay quantized and leave " +
                        fmt("%.0f%% agreement", 100 * a.steps.back().top1_agreement) + " on the calibration images";
    bullets +=
        "- " + m.title + ": keeping `" + top.node + "` FP32 removes " + fmt("%.0f%%", 100 * top.noise_share_removed) +
        " of the noise power, the top 3 layers " + fmt("%.0f%%", 100 * top3) + ". " + choice +
        "; on the evaluation images " +
        (m.has_labels ? "Top-1 " + top1_versus(m, auto_model, default_model) + " vs the default, " : std::string()) +
        "SQNR / agreement " + fidelity(auto_model) + " vs " + fidelity(default_model) +
        fmt(", latency %.2f", auto_model.footprint.cpu_ms) + fmt(" vs %.2f ms.\n", default_model.footprint.cpu_ms);
  }
  parts["sensitivity_by_model"] = block(text);
  parts["sensitivity_conclusions"] = block(bullets);
}

std::string footprint_table(const std::vector<ModelResults>& models) {
  std::vector<std::vector<std::string>> rows = {{"variant"}};
  for (const ModelResults& m : models)
    for (const char* what : {" ms/image", " file", " peak RSS"}) rows[0].push_back(m.title + what);
  for (const VariantResult& v : models.front().variants) {
    std::vector<std::string> row = {v.name};
    for (const ModelResults& m : models) {
      const Footprint& f = m.variant(v.name).footprint;
      row.push_back(fmt("%.2f", f.cpu_ms) + fmt(" (%.2f)", f.wall_ms));
      row.push_back(mb(f.file_bytes));
      row.push_back(mb(f.peak_rss_bytes));
    }
    rows.push_back(row);
  }
  return table(rows);
}

std::string footprint_conclusions(const std::vector<ModelResults>& models) {
  std::string text;
  for (const ModelResults& m : models) {
    const Footprint &f = m.variant(kFp32).footprint, &q = m.variant(kDefault).footprint,
                    &c = m.variant(kInt8Classifier).footprint;
    text += "- " + m.title + fmt(": INT8 runs %.2f×", f.cpu_ms / q.cpu_ms) + " as fast as FP32 on one thread (" +
            fmt("%.2f", f.cpu_ms) + fmt(" → %.2f ms", q.cpu_ms) + fmt("; %.2f ms with the INT8 classifier)", c.cpu_ms) +
            fmt(", the file is %.0f%% of FP32's", 100.0 * double(q.file_bytes) / double(f.file_bytes)) +
            fmt(" and the peak RSS above the bare process %.0f%%",
                100.0 * double(q.peak_rss_bytes - q.start_rss_bytes) / double(f.peak_rss_bytes - f.start_rss_bytes)) +
            " (" + mb(f.peak_rss_bytes - f.start_rss_bytes) + " → " + mb(q.peak_rss_bytes - q.start_rss_bytes) + ").\n";
  }
  return text + "\n";
}

// The modern classifiers: each model's FP32, default INT8 and auto-fp32 rows side by side.
std::string modern_table(const std::vector<ModelResults>& modern) {
  std::vector<std::vector<std::string>> rows = {
      {"model", "variant", "SQNR / agreement vs FP32", "ms/image", "speedup over FP32", "file", "peak RSS"}};
  for (const ModelResults& m : modern) {
    const Footprint& f = m.variant(kFp32).footprint;
    for (const std::string& name : {kFp32, kDefault, kAutoFp32}) {
      const VariantResult& v = m.variant(name);
      rows.push_back(
          {m.title, name, name == kFp32 ? "-" : fidelity(v),
           fmt("%.2f", v.footprint.cpu_ms) + fmt(" (%.2f)", v.footprint.wall_ms),
           fmt("%.2f×", f.cpu_ms / v.footprint.cpu_ms),
           mb(v.footprint.file_bytes) + fmt(" (%.0f%%)", 100.0 * double(v.footprint.file_bytes) / double(f.file_bytes)),
           mb(v.footprint.peak_rss_bytes)});
    }
  }
  return table(rows);
}

std::string modern_conclusions(const std::vector<ModelResults>& modern) {
  std::string text = "**Conclusions.**\n\n";
  for (const ModelResults& m : modern) {
    const VariantResult &f = m.variant(kFp32), &q = m.variant(kDefault);
    const bool fidelity_met = q.eval.sqnr_db >= 30 && q.eval.top1_agreement >= 0.95;
    text += "- " + m.title + ": the default INT8 model has " + fidelity(q) + " against FP32 on " +
            std::to_string(m.evaluation_images.size()) + " held-out images (" +
            (fidelity_met ? "meets" : "**misses**") + " the 30 dB / 95% bar), runs " +
            fmt("%.2f×", f.footprint.cpu_ms / q.footprint.cpu_ms) + " as fast as FP32 on one thread, in " +
            fmt("%.0f%%", 100.0 * double(q.footprint.file_bytes) / double(f.footprint.file_bytes)) +
            " of FP32's file; its most sensitive layer is `" + m.sensitivity.layers.front().node + "` (" +
            fmt("%.0f%%", 100 * m.sensitivity.layers.front().noise_share_removed) + " of the noise power).\n";
  }
  return text + "\n";
}

}  // namespace

void write_results(const std::vector<ModelResults>& models, const std::vector<ModelResults>& modern, const RunInfo& run,
                   const std::string& out_dir) {
  const std::string results_dir = out_dir + "/results";
  std::filesystem::create_directories(results_dir);
  const ModelResults& first = models.front();
  std::vector<std::string> all, int8;
  for (const VariantResult& v : first.variants) {
    all.push_back(v.name);
    if (v.name != kFp32) int8.push_back(v.name);
  }
  std::vector<ModelResults> labelled;
  std::copy_if(models.begin(), models.end(), std::back_inserter(labelled),
               [](const ModelResults& m) { return m.has_labels; });
  octet::tools::write_bar_chart(
      variant_chart(labelled, all, "Top-1 on the evaluation images", "Top-1 %",
                    [](const ModelResults&, const VariantResult& v) { return 100 * v.eval.top1; }),
      results_dir + "/top1.svg");
  octet::tools::write_bar_chart(
      variant_chart(models, int8, "Logit SQNR against FP32", "dB",
                    [](const ModelResults&, const VariantResult& v) { return v.eval.sqnr_db; }),
      results_dir + "/sqnr.svg");
  std::vector<std::string> counts;
  for (size_t count : run.calibration_counts)
    if (count != run.calibration_counts.back()) counts.push_back(calibration_count_name(count));
  octet::tools::write_bar_chart(
      variant_chart(
          models, counts, "Activation range change against " + calibration_count_name(run.calibration_counts.back()),
          "mean relative change %", [](const ModelResults&, const VariantResult& v) { return 100 * v.range_change; }),
      results_dir + "/calibration_ranges.svg");
  octet::tools::BarChart latency =
      variant_chart(models, all, "Latency, batch 1, 1 thread (median CPU time of a run)", "ms per image (log scale)",
                    [](const ModelResults&, const VariantResult& v) { return v.footprint.cpu_ms; });
  latency.log_y = true;
  octet::tools::write_bar_chart(latency, results_dir + "/latency.svg");

  std::map<std::string, std::string> parts;
  parts["command"] = "build/converters/report" + std::string(run.quick ? " --quick" : "");
  parts["minutes"] = fmt("%.1f", run.minutes);
  parts["cpu_minutes"] = fmt("%.1f", run.cpu_minutes);
  std::string model_minutes;
  std::vector<ModelResults> everything = models;
  everything.insert(everything.end(), modern.begin(), modern.end());
  for (const ModelResults& m : everything)
    model_minutes += (model_minutes.empty() ? "" : ", ") + m.title + fmt(" %.1f", m.seconds / 60);
  parts["model_minutes"] = model_minutes;
  parts["cpu"] = run.cpu;
  parts["cores"] = std::to_string(run.cores);
  parts["load_before"] = run.load_before;
  parts["load_after"] = run.load_after;
  parts["quick_note"] =
      run.quick ? "**Quick mode: few images, the numbers are only a check that the report runs.**\n\n" : "";
  parts["calibration_images"] = std::to_string(first.calibration_images);
  parts["evaluation_images"] = std::to_string(first.evaluation_images.size());
  parts["fidelity_images"] = std::to_string(models.back().evaluation_images.size());
  parts["summary_table"] = block(summary(models));
  parts["activations_table"] =
      block(comparison_table(models, {kFp32, kDefault, kAsymmetric, kSymmetric, kPerTensor}, kDefault));
  parts["activations_conclusions"] = block(conclusions(models, {kAsymmetric, kSymmetric, kPerTensor}, kDefault));
  parts["ranges_table"] = block(comparison_table(models, {kFp32, kDefault, kPercentile, kEntropy, kMse}, kDefault));
  parts["ranges_conclusions"] = block(conclusions(models, {kPercentile, kEntropy, kMse}, kDefault));
  parts["method_grid_table"] = block(method_grid_table(models));
  parts["full_count"] = std::to_string(run.calibration_counts.back());
  parts["count_table"] = block(count_table(models, run));
  parts["count_conclusions"] = block(count_conclusions(models, run));
  parts["classifier_table"] = block(comparison_table(models, {kFp32, kDefault, kInt8Classifier}, kDefault));
  parts["classifier_conclusions"] = block(conclusions(models, {kInt8Classifier}, kDefault));
  parts["bias_correction_table"] = block(comparison_table(models, {kFp32, kDefault, kNoBiasCorrection}, kDefault));
  parts["bias_correction_conclusions"] = block(conclusions(models, {kNoBiasCorrection}, kDefault));
  std::string decisions;
  for (const ModelResults& m : models) {
    const octet::quant::EqualizationReport& e = m.equalization;
    decisions += "- " + m.title + ": " +
                 (!e.compared ? std::string("no Conv pairs to equalize (ReLU6 has a fixed bound)")
                              : fmt("%.2f dB without, ", e.sqnr_without_db) + fmt("%.2f dB with: ", e.sqnr_with_db) +
                                    (e.kept ? "kept" : "not kept (the no-equalization row is then the default)")) +
                 ".\n";
  }
  parts["equalization_decisions"] = block(decisions);
  parts["rounding_table"] =
      block(comparison_table(models, {kFp32, kDefault, kNearestRounding, kNoEqualization, kNeither}, kDefault));
  parts["rounding_conclusions"] = block(conclusions(models, {kNearestRounding, kNoEqualization, kNeither}, kDefault));
  sensitivity_parts(everything, results_dir, parts);
  parts["auto_fp32_table"] = block(comparison_table(models, {kFp32, kDefault, kAutoFp32}, kDefault));
  parts["latency_runs"] = std::to_string(run.latency_runs);
  parts["latency_rounds"] = std::to_string(run.latency_rounds);
  parts["bare_process_rss"] = mb(models.front().variant(kFp32).footprint.start_rss_bytes);
  parts["footprint_table"] = block(footprint_table(models));
  parts["footprint_conclusions"] = block(footprint_conclusions(models));
  parts["modern_images"] = modern.empty() ? "0" : std::to_string(modern.front().evaluation_images.size());
  parts["modern_table"] = block(modern_table(modern));
  parts["modern_conclusions"] = block(modern_conclusions(modern));
  const std::string md = octet::tools::fill_template_file(OCTET_REPORT_TEMPLATE, parts);
  std::ofstream out(out_dir + "/RESULTS.md");
  out << md;
  if (!out) throw octet::Error("cannot write " + out_dir + "/RESULTS.md");
}

}  // namespace report
