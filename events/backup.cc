#include "events/backup.h"

#include <filesystem>
#include <system_error>

namespace crm {

Result<BackupResult> backup_data_dir(Store& store, const EventLog& log,
                                     const std::string& directory) {
  namespace fs = std::filesystem;
  const fs::path target(directory);
  if (directory.empty() || !target.is_absolute())
    return Status::invalid_argument("the backup directory must be an absolute path, not '" +
                                    directory + "'");
  std::error_code error;
  if (fs::exists(target, error)) {
    if (!fs::is_directory(target, error))
      return Status::conflict(directory + " exists and is not a directory");
    if (!fs::is_empty(target, error))
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
