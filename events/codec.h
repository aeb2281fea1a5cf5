// Byte-level encodings shared by the log and its readers: order-preserving keys, hex,
// SHA-256, positions ("<partition>:<offset>") and protobuf timestamps.
#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "envelope.pb.h"

namespace crm {

void put_u32_be(std::string& out, uint32_t v);
void put_u64_be(std::string& out, uint64_t v);
uint32_t get_u32_be(std::string_view in);  // requires in.size() >= 4
uint64_t get_u64_be(std::string_view in);  // requires in.size() >= 8

std::string to_hex(std::string_view bytes);
std::string sha256(std::string_view data);

// SHA-256 fed piece by piece (for digests over more than fits in one string).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view data);
  std::string finish();  // the 32-byte digest; the object is spent

 private:
  void* context_;  // EVP_MD_CTX
};

std::string format_position(const events::Position& p);
std::optional<events::Position> parse_position(std::string_view text);

google::protobuf::Timestamp timestamp_from_us(int64_t us);
int64_t timestamp_to_us(const google::protobuf::Timestamp& t);

}  // namespace crm
