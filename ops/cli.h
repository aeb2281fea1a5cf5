// The crm binary's command line: flags (with their environment variables), the engine's
// configuration from them, and the start every offline tool shares.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ops/app.h"

namespace crm {

extern const char kUsage[];

struct Flags {
  std::map<std::string, std::string> values;
  std::map<std::string, std::string> sources;  // where each value came from, for errors
  std::string error;                           // the first bad argument, in a sentence
};

// Flags from argv[first…] (--name value or --name=value), over their environment variables,
// over the configuration file (--config or CRM_CONFIG, when "config" is known); only `known`
// names are taken.
Flags parse_flags(int argc, char** argv, int first, const std::vector<std::string>& known);
// Reads a JSON configuration file (keys: the flags' names in lowerCamelCase) into `flags`;
// returns an error sentence naming the file and the bad key, or "".
std::string load_config_file(const std::string& path, const std::vector<std::string>& known,
                             Flags& flags);
// Every flag `crm serve` takes.
extern const std::vector<std::string> kServeFlags;
bool parse_number(const std::string& text, uint64_t min, uint64_t max, uint64_t* out);
// Reads the common flags into `config`; returns an error sentence or "".
std::string read_config(const Flags& flags, AppConfig& config);

// The start of an offline tool: its flags read (from argv[first] on), then the data directory
// opened without serving it. Returns the exit code to stop with (2: bad flags, 1: cannot open)
// or 0 with `offline` set.
int open_tool(const std::string& name, int argc, char** argv, int first,
              const std::vector<std::string>& known, Flags& flags, OfflineLog& offline);

// The operators' tools (ops/admin_cli.cc).
int backup_command(int argc, char** argv);
int config_command(int argc, char** argv);

// The auditors' tools (ops/audit_cli.cc).
int verify_command(int argc, char** argv);
int export_command(int argc, char** argv);
int history_command(int argc, char** argv);

}  // namespace crm
