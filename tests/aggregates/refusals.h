// What the aggregate tests expect of a refused decision.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "aggregates/rejection.h"

namespace crm::testing {

// Expects a refusal by `rule` with a violation (or the rejection itself, field "") naming
// `field`, of `kind`, appending nothing.
template <typename Event>
void expect_refused(const Decision<Event>& d, const std::string& rule, const std::string& field,
                    Rejection::Kind kind = Rejection::Kind::kInvalid) {
  ASSERT_TRUE(d.rejection.has_value()) << "expected " << rule;
  EXPECT_TRUE(d.events.empty());
  EXPECT_EQ(d.rejection->kind, kind) << d.rejection->message;
  std::vector<std::pair<std::string, std::string>> found;
  for (const auto& v : d.rejection->violations) found.emplace_back(v.rule, v.field);
  if (found.empty()) found.emplace_back(d.rejection->rule, "");
  EXPECT_THAT(found, ::testing::Contains(std::make_pair(rule, field))) << d.rejection->message;
}

}  // namespace crm::testing
