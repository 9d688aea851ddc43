#include "load/src/html_report.hpp"

#include <gtest/gtest.h>

namespace sluice::load {
namespace {

std::size_t count(const std::string& text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(HtmlReportTest, IsSelfContainedAndEmbedsTheDataSafely) {
  nlohmann::json report = {
      {"config", {{"url", "http://x/mcp"}, {"scenario", {{"name", "</script><script>alert(1)"}}}}},
      {"summary", {{"ok", 1}}},
      {"timeseries", nlohmann::json::array()}};
  const std::string html = render_html_report(report);
  EXPECT_EQ(html.rfind("<!doctype html>", 0), 0u);
  // Only the page's own two scripts open and close; the label cannot end one early.
  EXPECT_EQ(count(html, "<script"), 2u);
  EXPECT_EQ(count(html, "</script>"), 2u);
  EXPECT_NE(html.find(R"(\u003c/script>\u003cscript>alert(1))"), std::string::npos);
  // Nothing is fetched: no external scripts, styles, images or fonts.
  EXPECT_EQ(html.find(" src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
}

}  // namespace
}  // namespace sluice::load
