// Routes commands to partitions: partition = murmur2(partition key) mod P, the same function
// Kafka's default partitioner uses, so a customer's events land in the same partition number
// on the embedded log and on crm.events.
#pragma once

#include <cstdint>
#include <string_view>

namespace crm {

uint32_t partition_for(std::string_view partition_key, uint32_t partition_count);

}  // namespace crm
