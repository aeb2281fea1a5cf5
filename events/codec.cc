#include "events/codec.h"

#include <openssl/evp.h>

#include <charconv>
#include <cstdlib>

namespace crm {

void put_u32_be(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

void put_u64_be(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

uint32_t get_u32_be(std::string_view in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

uint64_t get_u64_be(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string sha256(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    std::abort();  // OpenSSL cannot fail here short of memory exhaustion
  }
  return std::string(reinterpret_cast<char*>(digest), length);
}

Sha256::Sha256() : context_(EVP_MD_CTX_new()) {
  if (context_ == nullptr ||
      EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(context_), EVP_sha256(), nullptr) != 1)
    std::abort();
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(context_)); }

void Sha256::update(std::string_view data) {
  if (EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(context_), data.data(), data.size()) != 1)
    std::abort();
}

std::string Sha256::finish() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(context_), digest, &length) != 1) std::abort();
  return std::string(reinterpret_cast<char*>(digest), length);
}

std::string format_position(const events::Position& p) {
  return std::to_string(p.partition()) + ":" + std::to_string(p.offset());
}

std::optional<events::Position> parse_position(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  uint32_t partition = 0;
  uint64_t offset = 0;
  auto p = std::from_chars(text.data(), text.data() + colon, partition);
  if (p.ec != std::errc() || p.ptr != text.data() + colon || colon == 0) return std::nullopt;
  const char* rest = text.data() + colon + 1;
  auto o = std::from_chars(rest, text.data() + text.size(), offset);
  if (o.ec != std::errc() || o.ptr != text.data() + text.size() || rest == o.ptr)
    return std::nullopt;
  events::Position position;
  position.set_partition(partition);
  position.set_offset(offset);
  return position;
}

google::protobuf::Timestamp timestamp_from_us(int64_t us) {
  google::protobuf::Timestamp t;
  int64_t seconds = us / 1000000;
  int64_t micros = us % 1000000;
  if (micros < 0) {
    micros += 1000000;
    seconds -= 1;
  }
  t.set_seconds(seconds);
  t.set_nanos(static_cast<int32_t>(micros * 1000));
  return t;
}

int64_t timestamp_to_us(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1000000 + t.nanos() / 1000;
}

}  // namespace crm
