// The Kafka test harness itself: librdkafka's mock cluster in its own process, spoken to by
// kcat, an independent Kafka client. The Kafka backend's tests (issue 6) build on it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/kafka_mock.h"
#include "tests/support/test_support.h"

namespace crm {
namespace {

using ::testing::HasSubstr;
using testing::run_command;

TEST(KafkaMock, ThreeBrokersTakeRecordsFromKcatAndGiveThemBackInOrder) {
  testing::KafkaMock cluster(3, {{"crm.inbound", 4}});
  ASSERT_FALSE(cluster.bootstrap().empty()) << cluster.error();
  EXPECT_EQ(std::count(cluster.bootstrap().begin(), cluster.bootstrap().end(), ','), 2)
      << cluster.bootstrap();
  const std::string kcat = "kcat -b " + cluster.bootstrap();

  auto produced = run_command("printf 'cus-1:first\\ncus-1:second\\ncus-1:third\\n' | " + kcat +
                              " -P -t crm.inbound -K : -p 2");
  ASSERT_EQ(produced.exit_code, 0) << produced.output;
  auto consumed = run_command(kcat + " -C -t crm.inbound -p 2 -o beginning -e -q -f '%k=%s@%o\\n'");

  ASSERT_EQ(consumed.exit_code, 0) << consumed.output;
  EXPECT_EQ(consumed.output, "cus-1=first@0\ncus-1=second@1\ncus-1=third@2\n");
  auto metadata = run_command(kcat + " -L -t crm.inbound");
  EXPECT_THAT(metadata.output, HasSubstr("4 partitions"));
}

}  // namespace
}  // namespace crm
