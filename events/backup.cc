#include "events/backup.h"

#include <filesystem>
#include <mutex>
#include <system_error>

namespace crm {

Result<BackupResult> backup_data_dir(Store& store, const EventLog& log,
                                     const std::string& directory) {
  namespace fs = std::filesystem;
  const fs::path target(directory);
  if (directory.empty() || !target.is_absolute())
    return Status::invalid_argument("the backup directory must be an absolute path, not '" +
                                    directory + "'");
  // One backup at a time: two into the same new directory must not both pass the check below.
  static std::mutex one_at_a_time;
  std::lock_guard lock(one_at_a_time);
  std::error_code error;
  const bool exists = fs::exists(target, error);
  if (error) return Status::invalid_argument("cannot read " + directory + ": " + error.message());
  if (exists) {
    if (!fs::is_directory(target, error))
      return Status::conflict(directory + " exists and is not a directory");
    const bool empty = fs::is_empty(target, error);
    if (error) return Status::invalid_argument("cannot read " + directory + ": " + error.message());
    if (!empty)
      return Status::conflict(directory + " is not empty; a backup goes into a new directory");
  } else if (!fs::create_directories(target, error) && error) {
    return Status::invalid_argument("cannot create " + directory + ": " + error.message());
  }
  BackupResult result;
  result.directory = target.lexically_normal().string();
  for (uint32_t p = 0; p < log.partition_count(); ++p)
    result.end_offsets.push_back(log.end_offset(p));
  if (auto s = store.checkpoint((target / "db").string()); !s.is_ok()) {
    fs::remove_all(target / "db", error);  // a partial copy must not pass for a backup
    return s;
  }
  return result;
}

}  // namespace crm
