// Versions written into every event. An engine refuses to fold events whose writer_version is
// newer than its own: it could misread them (ARCHITECTURE, lessons from Zeebe).
#pragma once

#include <cstdint>

namespace crm {

inline constexpr uint32_t kWriterVersion = 1;
inline constexpr uint32_t kEventSchemaVersion = 1;

}  // namespace crm
