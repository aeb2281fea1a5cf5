#include "events/hash_chain.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "events/codec.h"

namespace crm::hash_chain {

std::string compute(const events::EventEnvelope& event) {
  events::EventEnvelope body = event;
  body.clear_hash();
  body.clear_position();
  std::string bytes = event.previous_hash();
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream out(&stream);
    out.SetSerializationDeterministic(true);
    body.SerializeToCodedStream(&out);
  }
  return sha256(bytes);
}

void seal(events::EventEnvelope& event, const std::string& previous_hash) {
  event.set_previous_hash(previous_hash);
  event.set_hash(compute(event));
}

Status verify(const std::vector<events::EventEnvelope>& events, std::string previous_hash,
              uint64_t first_version) {
  uint64_t expected_version = first_version;
  for (const auto& event : events) {
    std::string where =
        "stream '" + event.stream_id() + "' version " + std::to_string(event.stream_version());
    if (event.stream_version() != expected_version) {
      return Status::corruption("Expected version " + std::to_string(expected_version) + " in " +
                                where + ": events are missing or out of order");
    }
    if (event.previous_hash() != previous_hash) {
      return Status::corruption("Expected " + where +
                                " to chain from the previous event's hash, but it does not");
    }
    if (compute(event) != event.hash()) {
      return Status::corruption("Expected " + where +
                                " to match its hash, but its content was changed");
    }
    previous_hash = event.hash();
    ++expected_version;
  }
  return Status::ok();
}

}  // namespace crm::hash_chain
