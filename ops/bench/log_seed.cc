// Prepares the audit benchmark: writes a log of N customer events straight through the embedded
// log (unsynced, as a bulk load), spread over the partitions like the engine spreads them, and,
// first, the baseline: the same number of records of the same size written to a plain RocksDB
// in batches of 1,000. Prints both rates.
//   crm_log_seed --data-dir DIR --baseline-dir DIR2 [--events N (1000000)] [--partitions N (8)]
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "customer.pb.h"
#include "events/codec.h"
#include "events/rocksdb_log.h"
#include "events/version.h"
#include "workflow/router.h"

namespace crm::bench {
namespace {

constexpr char kUsage[] =
    "usage: crm_log_seed --data-dir DIR --baseline-dir DIR [--events N (1000000)]\n"
    "                    [--partitions N (8)]\n";
constexpr int kEventsPerCustomer = 5;  // registered, then four profile changes
constexpr int64_t kStartUs = 1'790'000'000'000'000;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

events::EventEnvelope envelope(const google::protobuf::Message& data, int64_t at_us, int n) {
  events::EventEnvelope e;
  e.set_event_id("evt_" + std::to_string(n));
  e.set_stream_type("customer");
  e.set_event_type(data.GetDescriptor()->full_name());
  e.set_schema_version(1);
  e.set_writer_version(kWriterVersion);
  *e.mutable_occurred_at() = timestamp_from_us(at_us);
  *e.mutable_recorded_at() = timestamp_from_us(at_us);
  e.mutable_actor()->set_principal_id("seed");
  e.mutable_actor()->set_role("admin");
  e.set_correlation_id("cor_" + std::to_string(n));
  e.mutable_data()->PackFrom(data);
  return e;
}

// The events of customer `c`: registered, then four changes of its profile.
std::vector<events::EventEnvelope> customer_events(int c) {
  std::vector<events::EventEnvelope> out;
  const int64_t at = kStartUs + c * 1000LL;
  customer::CustomerRegistered registered;
  registered.set_customer_id("cus_" + std::to_string(c));
  registered.set_name("Customer " + std::to_string(c) + " Telecom Holdings Ltd");
  registered.set_kind(customer::ENTERPRISE);
  registered.set_certificate_no("91310000MA1K" + std::to_string(c));
  registered.set_level(customer::STANDARD);
  registered.set_credit_level(customer::B);
  registered.set_region(c % 2 ? "north" : "south");
  registered.set_industry("retail");
  registered.set_owner_id("sales-" + std::to_string(c % 50));
  registered.set_stage(customer::PROSPECT);
  registered.set_phone("+86 21 5555 " + std::to_string(1000 + c % 9000));
  registered.set_email("contact" + std::to_string(c) + "@example.com");
  out.push_back(envelope(registered, at, c * kEventsPerCustomer));
  for (int i = 1; i < kEventsPerCustomer; ++i) {
    customer::CustomerProfileChanged changed;
    changed.set_address(std::to_string(i) + " Nanjing Road, Shanghai");
    out.push_back(envelope(changed, at + i, c * kEventsPerCustomer + i));
  }
  return out;
}

bool parse(const char* text, uint64_t* out) {
  auto [end, error] = std::from_chars(text, text + std::strlen(text), *out);
  return error == std::errc() && *end == '\0';
}

}  // namespace
}  // namespace crm::bench

int main(int argc, char** argv) {
  using namespace crm;
  using namespace crm::bench;
  std::string data_dir, baseline_dir;
  uint64_t events = 1'000'000, partitions = 8;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    bool ok = true;
    if (flag == "--data-dir")
      data_dir = argv[i + 1];
    else if (flag == "--baseline-dir")
      baseline_dir = argv[i + 1];
    else if (flag == "--events")
      ok = parse(argv[i + 1], &events) && events > 0;
    else if (flag == "--partitions")
      ok = parse(argv[i + 1], &partitions) && partitions > 0;
    else
      ok = false;
    if (!ok) return std::fprintf(stderr, "crm_log_seed: bad flag %s\n%s", flag.c_str(), kUsage), 2;
  }
  if (data_dir.empty() || baseline_dir.empty() || argc % 2 == 0)
    return std::fprintf(stderr, "%s", kUsage), 2;
  const int customers = static_cast<int>((events + kEventsPerCustomer - 1) / kEventsPerCustomer);

  // Baseline: the same records (key and value sizes) into a plain RocksDB, batches of 1,000.
  size_t value_bytes = 0;
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    auto s = rocksdb::DB::Open(options, baseline_dir, &raw);
    if (!s.ok()) return std::fprintf(stderr, "crm_log_seed: %s\n", s.ToString().c_str()), 1;
    std::unique_ptr<rocksdb::DB> db(raw);
    const auto started = std::chrono::steady_clock::now();
    rocksdb::WriteBatch batch;
    uint64_t written = 0;
    for (int c = 0; c < customers && written < events; ++c) {
      for (const auto& e : customer_events(c)) {
        const std::string value = e.SerializeAsString();
        value_bytes += value.size();
        batch.Put(log_key(static_cast<uint32_t>(c % partitions), written), value);
        if (++written % 1000 == 0) {
          db->Write(rocksdb::WriteOptions(), &batch);
          batch.Clear();
        }
        if (written == events) break;
      }
    }
    db->Write(rocksdb::WriteOptions(), &batch);
    db->Flush(rocksdb::FlushOptions());
    const double took = seconds_since(started);
    std::printf(
        "baseline: plain RocksDB write of %llu records (%zu bytes each on average) in "
        "%.3f s: %.0f records/s\n",
        static_cast<unsigned long long>(written), value_bytes / written, took, written / took);
  }

  // The engine's log: each customer's events appended to its partition, as the engine would.
  StoreOptions store_options;
  store_options.path = data_dir + "/db";
  store_options.sync_writes = false;
  std::filesystem::create_directories(data_dir);
  auto store = Store::open(store_options);
  if (!store.is_ok())
    return std::fprintf(stderr, "crm_log_seed: %s\n", store.status().to_string().c_str()), 1;
  auto log = RocksDbLog::open(**store, static_cast<uint32_t>(partitions));
  if (!log.is_ok())
    return std::fprintf(stderr, "crm_log_seed: %s\n", log.status().to_string().c_str()), 1;
  const auto started = std::chrono::steady_clock::now();
  uint64_t appended = 0;
  for (int c = 0; c < customers && appended < events; ++c) {
    const std::string id = "cus_" + std::to_string(c);
    AppendRequest request;
    request.partition = partition_for(id, static_cast<uint32_t>(partitions));
    auto list = customer_events(c);
    if (list.size() > events - appended) list.resize(events - appended);
    appended += list.size();
    request.streams.push_back({id, kNoStream, std::move(list)});
    auto appended_now = (*log)->append(std::move(request));
    if (!appended_now.is_ok())
      return std::fprintf(stderr, "crm_log_seed: %s\n", appended_now.status().to_string().c_str()),
             1;
  }
  std::printf("seeded: %llu events of %d customers in %.3f s\n",
              static_cast<unsigned long long>(appended), customers, seconds_since(started));
  return 0;
}
