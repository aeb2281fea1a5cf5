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
  std::string error;  // the first bad argument, in a sentence
};

// Flags from argv[first…] (--name value or --name=value), over their environment variables;
// only `known` names are taken.
Flags parse_flags(int argc, char** argv, int first, const std::vector<std::string>& known);
bool parse_number(const std::string& text, uint64_t min, uint64_t max, uint64_t* out);
// Reads the common flags into `config`; returns an error sentence or "".
std::string read_config(const Flags& flags, AppConfig& config);

// The start of an offline tool: its flags read (from argv[first] on), then the data directory
// opened without serving it. Returns the exit code to stop with (2: bad flags, 1: cannot open)
// or 0 with `offline` set.
int open_tool(const std::string& name, int argc, char** argv, int first,
              const std::vector<std::string>& known, Flags& flags, OfflineLog& offline);

// The auditors' tools (ops/audit_cli.cc).
int verify_command(int argc, char** argv);
int export_command(int argc, char** argv);
int history_command(int argc, char** argv);

}  // namespace crm
