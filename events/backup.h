// Backups: a consistent copy of a data directory, taken while the engine serves or not.
// The copy is itself a data directory: `crm serve --data-dir <copy>` starts on it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "events/event_log.h"
#include "events/rocksdb_store.h"

namespace crm {

struct BackupResult {
  std::string directory;              // absolute
  std::vector<uint64_t> end_offsets;  // each partition's log end when the copy began
};

// Copies the database into `<directory>/db`. `directory` must be absolute and either not exist
// (it is created) or be an empty directory; anything else is refused before a byte is written
// (kInvalidArgument, or kConflict when it holds files). Every write acknowledged before the
// call is in the copy.
Result<BackupResult> backup_data_dir(Store& store, const EventLog& log,
                                     const std::string& directory);

}  // namespace crm
