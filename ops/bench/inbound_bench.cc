// Publishes records for ops/bench/inbound_bench.sh, against a Kafka cluster (the mock one):
//   crm_inbound_bench --brokers B --records N --baseline [--topic T (bench.baseline)]
//     the baseline: N records of the same size through librdkafka's transactional producer, in
//     transactions of 1,000; prints "baseline: N records in S s: R records/s"
//   crm_inbound_bench --brokers B --records N --publish [--topic T (crm.inbound)]
//     N RegisterCustomer records for the engine (each its own customer and idempotency key),
//     through an idempotent producer (acks=all); prints "published: N records in S s"
#include <librdkafka/rdkafka.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

constexpr char kUsage[] =
    "usage: crm_inbound_bench --brokers HOST:PORT,... --records N (--baseline | --publish)\n"
    "                         [--topic T] [--first K (0): the first record's number]\n";

bool set(rd_kafka_conf_t* conf, const char* name, const std::string& value) {
  char error[512];
  if (rd_kafka_conf_set(conf, name, value.c_str(), error, sizeof error) == RD_KAFKA_CONF_OK)
    return true;
  std::fprintf(stderr, "crm_inbound_bench: %s: %s\n", name, error);
  return false;
}

bool check(rd_kafka_error_t* error, const char* what) {
  if (error == nullptr) return true;
  std::fprintf(stderr, "crm_inbound_bench: %s: %s\n", what, rd_kafka_error_string(error));
  rd_kafka_error_destroy(error);
  return false;
}

std::string body(long n) {
  const std::string id = "cus_bench_" + std::to_string(n);
  return R"({"customerId": ")" + id + R"(", "name": "Bench customer )" + std::to_string(n) +
         R"(", "kind": "ENTERPRISE", "level": "GROWTH", "region": "North"})";
}

}  // namespace

int main(int argc, char** argv) {
  std::string brokers, topic, mode;
  long records = 0, first = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--baseline" || flag == "--publish") {
      mode = flag.substr(2);
      continue;
    }
    if (i + 1 >= argc) return std::fputs(kUsage, stderr), 2;
    const std::string value = argv[++i];
    if (flag == "--brokers") {
      brokers = value;
    } else if (flag == "--topic") {
      topic = value;
    } else if (flag == "--first") {
      auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), first);
      if (error != std::errc() || end != value.data() + value.size() || first < 0)
        return std::fputs(kUsage, stderr), 2;
    } else if (flag == "--records") {
      auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), records);
      if (error != std::errc() || end != value.data() + value.size() || records <= 0)
        return std::fputs(kUsage, stderr), 2;
    } else {
      return std::fputs(kUsage, stderr), 2;
    }
  }
  if (brokers.empty() || records <= 0 || mode.empty()) return std::fputs(kUsage, stderr), 2;
  const bool baseline = mode == "baseline";
  if (topic.empty()) topic = baseline ? "bench.baseline" : "crm.inbound";

  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (!set(conf, "bootstrap.servers", brokers) || !set(conf, "enable.idempotence", "true") ||
      !set(conf, "acks", "all") || !set(conf, "linger.ms", "5") ||
      (baseline && !set(conf, "transactional.id", "crm-inbound-bench")))
    return 1;
  char error[512];
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
  if (producer == nullptr) return std::fprintf(stderr, "crm_inbound_bench: %s\n", error), 1;
  if (baseline && !check(rd_kafka_init_transactions(producer, 30000), "init_transactions"))
    return 1;

  constexpr long kTransaction = 1000;
  const auto started = std::chrono::steady_clock::now();
  for (long n = 0; n < records; ++n) {
    if (baseline && n % kTransaction == 0 &&
        !check(rd_kafka_begin_transaction(producer), "begin_transaction"))
      return 1;
    const long number = first + n;
    const std::string key = "cus_bench_" + std::to_string(number);
    const std::string value = body(number);
    const std::string idempotency = "bench-" + std::to_string(number);
    rd_kafka_resp_err_t err;
    do {
      err = rd_kafka_producev(
          producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_HEADER("command", "RegisterCustomer", -1),
          RD_KAFKA_V_HEADER("idempotency-key", idempotency.c_str(), -1), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) rd_kafka_poll(producer, 10);
    } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      return std::fprintf(stderr, "crm_inbound_bench: produce: %s\n", rd_kafka_err2str(err)), 1;
    rd_kafka_poll(producer, 0);
    if (baseline && (n % kTransaction == kTransaction - 1 || n == records - 1) &&
        !check(rd_kafka_commit_transaction(producer, 30000), "commit_transaction"))
      return 1;
  }
  if (rd_kafka_flush(producer, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return std::fputs("crm_inbound_bench: flush timed out\n", stderr), 1;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (baseline) {
    std::printf("baseline: %ld records in %.3f s: %.0f records/s\n", records, seconds,
                records / seconds);
  } else {
    std::printf("published: %ld records in %.3f s\n", records, seconds);
  }
  rd_kafka_destroy(producer);
  return 0;
}
