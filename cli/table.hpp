// Column-aligned tables for `list`-style output (three spaces between columns, as runc prints).
#pragma once

#include <iostream>
#include <string>
#include <vector>

namespace barge::cli {

inline void print_columns(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      std::cout << row[i];
      if (i + 1 < row.size()) std::cout << std::string(widths[i] - row[i].size() + 3, ' ');
    }
    std::cout << "\n";
  }
}

}  // namespace barge::cli
