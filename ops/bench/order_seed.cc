// Prepares the order-submit benchmark on a running engine: publishes five offers with offer
// rules (a prerequisite, eligibility, a deposit, discount packages), registers customers, and
// creates draft orders of five items each, spread over the customers (so over the partitions).
// Writes one "/v1/orders/<id>:submit" path a line, for `crm_load --path-file`.
//   crm_order_seed --target 127.0.0.1:8080 --token TOKEN --orders 20000 --customers 64
//                  --connections 32 --out submits.txt
#include <httplib.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace crm::bench {
namespace {

constexpr char kUsage[] =
    "usage: crm_order_seed --target HOST:PORT --token TOKEN --out FILE\n"
    "                      [--orders N (20000)] [--customers N (64)] [--connections N (32)]\n";

struct Options {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string token;
  std::string out;
  int orders = 20000;
  int customers = 64;
  int connections = 32;
};

// The catalog every order draws from: five offers, one requiring another, one with a deposit,
// discount packages (base and optional), eligibility.
const std::vector<std::pair<std::string, std::string>> kOffers = {
    {"PHONE-LINE", R"({"name": "Phone line", "kind": "SINGLE",
      "pricingPlans": [{"id": "std", "kind": "STANDARD",
        "oneTime": {"amountMinor": 5000, "currency": "CNY"},
        "recurring": {"amountMinor": 2900, "currency": "CNY"},
        "discountPackages": [{"id": "base", "base": true, "percentOff": 10,
                              "effectiveModes": ["IMMEDIATE", "NEXT_CYCLE"]}]}],
      "maxQuantity": 1000})"},
    {"CALL-PACK", R"({"name": "Call package", "kind": "SINGLE", "requires": ["PHONE-LINE"],
      "pricingPlans": [{"id": "p", "kind": "DISCOUNTED",
        "recurring": {"amountMinor": 1000, "currency": "CNY"},
        "discountPackages": [{"id": "promo", "amountOff": {"amountMinor": 200, "currency": "CNY"},
                              "effectiveModes": ["IMMEDIATE"]}]}]})"},
    {"BROADBAND", R"({"name": "Broadband 500M", "kind": "SINGLE",
      "pricingPlans": [{"id": "std", "kind": "STANDARD",
        "oneTime": {"amountMinor": 20000, "currency": "CNY"},
        "recurring": {"amountMinor": 9900, "currency": "CNY"}}],
      "deposit": {"amount": {"amountMinor": 30000, "currency": "CNY"}, "scope": "OBJECT"}})"},
    {"IPTV", R"({"name": "IPTV", "kind": "SINGLE",
      "eligibility": {"customerKinds": ["ENTERPRISE", "INDIVIDUAL"], "minLevel": "STANDARD"},
      "pricingPlans": [{"id": "std", "kind": "STANDARD",
        "recurring": {"amountMinor": 3900, "currency": "CNY"},
        "discountPackages": [{"id": "base", "base": true, "percentOff": 15,
                              "effectiveModes": ["IMMEDIATE"]},
                             {"id": "sports", "percentOff": 5, "effectiveModes": ["IMMEDIATE"]}]}]})"},
    {"SIM", R"({"name": "Extra SIM", "kind": "SINGLE", "minQuantity": 1, "maxQuantity": 100000,
      "pricingPlans": [{"id": "std", "kind": "STANDARD",
        "oneTime": {"amountMinor": 1000, "currency": "CNY"},
        "recurring": {"amountMinor": 500, "currency": "CNY"}}]})"},
};

const std::vector<std::string> kItems = {
    R"({"offerId": "PHONE-LINE", "pricingPlanId": "std"})",
    R"({"offerId": "CALL-PACK", "discountPackageIds": ["promo"]})",
    R"({"offerId": "BROADBAND"})",
    R"({"offerId": "IPTV", "discountPackageIds": ["sports"]})",
    R"({"offerId": "SIM", "quantity": 2})",
};

// The value of a top-level string field in a JSON reply (the engine prints "id" first).
std::string string_field(const std::string& json, const std::string& name) {
  const std::string key = "\"" + name + "\":\"";
  const size_t at = json.find(key);
  if (at == std::string::npos) return "";
  const size_t end = json.find('"', at + key.size());
  return end == std::string::npos ? "" : json.substr(at + key.size(), end - at - key.size());
}

std::unique_ptr<httplib::Client> client(const Options& options) {
  auto c = std::make_unique<httplib::Client>(options.host, options.port);
  c->set_tcp_nodelay(true);
  c->set_keep_alive(true);
  c->set_read_timeout(30, 0);
  c->set_bearer_token_auth(options.token);
  return c;
}

bool expect(const httplib::Result& r, int status, const std::string& what) {
  if (r && r->status == status) return true;
  std::fprintf(stderr, "crm_order_seed: %s: %s\n", what.c_str(),
               r ? (std::to_string(r->status) + " " + r->body.substr(0, 500)).c_str()
                 : httplib::to_string(r.error()).c_str());
  return false;
}

int seed(const Options& options) {
  auto admin = client(options);
  for (const auto& [id, json] : kOffers) {
    auto r = admin->Put("/v1/catalog/offers/" + id, json, "application/json");
    if (!r || (r->status != 200 && r->status != 201)) return expect(r, 201, "publish " + id), 1;
  }
  std::vector<std::string> customers;
  for (int i = 0; i < options.customers; ++i) {
    auto r = admin->Post("/v1/customers",
                         R"({"name": "Bench customer )" + std::to_string(i) +
                             R"(", "kind": "ENTERPRISE", "level": "VIP", "creditLevel": "A",
                                 "region": "North", "ownerId": "bench"})",
                         "application/json");
    if (!expect(r, 201, "register a customer")) return 1;
    customers.push_back(string_field(r->body, "id"));
  }

  std::vector<std::string> paths(static_cast<size_t>(options.orders));
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < options.connections; ++t) {
    threads.emplace_back([&] {
      auto c = client(options);
      for (int i = next++; i < options.orders && !failed; i = next++) {
        const std::string& customer = customers[static_cast<size_t>(i) % customers.size()];
        auto r =
            c->Post("/v1/orders", R"({"customerId": ")" + customer + R"("})", "application/json");
        if (!expect(r, 201, "create an order")) return void(failed = true);
        const std::string id = string_field(r->body, "id");
        for (const auto& item : kItems) {
          auto added = c->Post("/v1/orders/" + id + "/items", item, "application/json");
          if (!expect(added, 201, "add an item")) return void(failed = true);
        }
        paths[static_cast<size_t>(i)] = "/v1/orders/" + id + ":submit";
      }
    });
  }
  for (auto& thread : threads) thread.join();
  if (failed) return 1;
  std::ofstream out(options.out);
  for (const auto& path : paths) out << path << '\n';
  if (!out) {
    std::fprintf(stderr, "crm_order_seed: cannot write %s\n", options.out.c_str());
    return 1;
  }
  std::printf("crm_order_seed: %d draft orders of %zu items for %d customers in %s\n",
              options.orders, kItems.size(), options.customers, options.out.c_str());
  return 0;
}

bool parse_integer(const std::string& text, int min, int max, int* out) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size() && *out >= min && *out <= max;
}

}  // namespace
}  // namespace crm::bench

int main(int argc, char** argv) {
  crm::bench::Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") return std::fputs(crm::bench::kUsage, stdout), 0;
    if (i + 1 >= argc)
      return std::fprintf(stderr, "%s needs a value\n%s", flag.c_str(), crm::bench::kUsage), 2;
    const std::string value = argv[++i];
    bool ok = true;
    if (flag == "--target") {
      const auto colon = value.rfind(':');
      ok = colon != std::string::npos &&
           crm::bench::parse_integer(value.substr(colon + 1), 1, 65535, &options.port);
      if (ok) options.host = value.substr(0, colon);
    } else if (flag == "--token") {
      options.token = value;
    } else if (flag == "--out") {
      options.out = value;
    } else if (flag == "--orders") {
      ok = crm::bench::parse_integer(value, 1, 10'000'000, &options.orders);
    } else if (flag == "--customers") {
      ok = crm::bench::parse_integer(value, 1, 100'000, &options.customers);
    } else if (flag == "--connections") {
      ok = crm::bench::parse_integer(value, 1, 1000, &options.connections);
    } else {
      ok = false;
    }
    if (!ok)
      return std::fprintf(stderr, "bad %s %s\n%s", flag.c_str(), value.c_str(), crm::bench::kUsage),
             2;
  }
  if (options.token.empty() || options.out.empty())
    return std::fputs(crm::bench::kUsage, stderr), 2;
  return crm::bench::seed(options);
}
