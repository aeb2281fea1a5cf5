// Tamper evidence over the embedded log (I8): the hash-chain check (verify, verify_stream) and the
// log's digests (digest_now, digest_at). Key layout: events/rocksdb_log.h.
#include <algorithm>
#include <map>
#include <unordered_map>

#include "events/codec.h"
#include "events/hash_chain.h"
#include "events/rocksdb_log.h"

namespace crm {

namespace {

// One stream as the partition walk found it.
struct SeenStream {
  uint32_t partition = 0;
  std::vector<uint64_t> offsets;  // offsets[v - 1]: where version v is
  std::string hash;               // of the last good event
  int problem = -1;               // its reported problem; later ones are not reported
  bool has_head = false;
  uint64_t next_indexed = 1;  // the version the stream index should name next
};

// Problems as found, at most one per stream, written into the report by finish().
class Problems {
 public:
  Problems(api::VerifyReport& report, size_t max) : report_(report), max_(max) {}
  int add(const std::string& stream_id, uint64_t version, uint32_t partition, uint64_t offset,
          std::string reason) {
    found_.emplace_back();
    set(found_.back(), stream_id, version, partition, offset, std::move(reason));
    return static_cast<int>(found_.size()) - 1;
  }
  // A better attribution of problem `index` (an unreadable event the index names).
  void replace(int index, const std::string& stream_id, uint64_t version, uint32_t partition,
               uint64_t offset, std::string reason) {
    set(found_[index], stream_id, version, partition, offset, std::move(reason));
  }
  uint64_t version(int index) const { return found_[index].version(); }
  void finish() {
    for (auto& problem : found_) {
      report_.set_ok(false);
      if (!report_.has_first_mismatch()) *report_.mutable_first_mismatch() = problem;
      if (static_cast<size_t>(report_.problems_size()) < max_)
        *report_.add_problems() = std::move(problem);
    }
    found_.clear();
  }

 private:
  static void set(api::VerifyProblem& problem, const std::string& stream_id, uint64_t version,
                  uint32_t partition, uint64_t offset, std::string reason) {
    problem.set_stream_id(stream_id);
    problem.set_version(static_cast<uint32_t>(version));
    problem.set_position(std::to_string(partition) + ":" + std::to_string(offset));
    problem.set_reason(std::move(reason));
  }

  api::VerifyReport& report_;
  size_t max_;
  std::vector<api::VerifyProblem> found_;
};

std::string where(const std::string& stream_id, uint64_t version) {
  return "stream '" + stream_id + "' version " + std::to_string(version);
}

}  // namespace

Result<api::VerifyReport> RocksDbLog::verify(size_t problems_max) {
  api::VerifyReport report;
  report.set_ok(true);
  Problems problems(report, problems_max);
  std::unique_ptr<const rocksdb::Snapshot, std::function<void(const rocksdb::Snapshot*)>> snapshot(
      store_.db()->GetSnapshot(),
      [this](const rocksdb::Snapshot* s) { store_.db()->ReleaseSnapshot(s); });
  rocksdb::ReadOptions options;
  options.snapshot = snapshot.get();
  options.fill_cache = false;

  // 1. Each partition in offset order: contiguous offsets, readable events at their own
  //    positions, each stream's versions in order and its hash chain unbroken.
  std::unordered_map<std::string, SeenStream> streams;
  std::map<std::pair<uint32_t, uint64_t>, bool> unreadable;  // positions of unparseable events
  struct Gap {
    uint32_t partition;
    uint64_t from, to;  // [from, to) missing
  };
  std::vector<Gap> gaps;  // reported last: the streams' problems name what was lost
  std::unique_ptr<rocksdb::Iterator> it(
      store_.db()->NewIterator(options, store_.family(Store::Family::kLog)));
  for (uint32_t p = 0; p < partitions_.size(); ++p) {
    uint64_t expected_offset = 0;
    for (it->Seek(log_key(p, 0)); it->Valid(); it->Next()) {
      auto key = it->key().ToStringView();
      if (key.size() != 12 || get_u32_be(key) != p) break;
      const uint64_t offset = get_u64_be(key.substr(4));
      if (offset != expected_offset) gaps.push_back({p, expected_offset, offset});
      expected_offset = offset + 1;
      events::EventEnvelope event;
      if (!event.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        unreadable[{p, offset}] = true;  // named with its stream by the index, below
        continue;
      }
      report.set_events(report.events() + 1);
      SeenStream& seen = streams[event.stream_id()];
      seen.partition = p;
      const uint64_t version = seen.offsets.size() + 1;
      if (seen.problem >= 0) continue;
      std::string reason;
      if (event.position().partition() != p || event.position().offset() != offset) {
        reason = "Expected " + where(event.stream_id(), event.stream_version()) + " at " +
                 std::to_string(p) + ":" + std::to_string(offset) + " to say so, but it says " +
                 format_position(event.position()) + ": events were moved";
      } else if (event.stream_version() != version) {
        reason = "Expected " + where(event.stream_id(), version) + " at " + std::to_string(p) +
                 ":" + std::to_string(offset) + ", but found version " +
                 std::to_string(event.stream_version()) + ": events are missing or out of order";
      } else if (event.previous_hash() != seen.hash) {
        reason = "Expected " + where(event.stream_id(), version) +
                 " to chain from the previous event's hash, but it does not";
      } else if (hash_chain::compute(event) != event.hash()) {
        reason = "Expected " + where(event.stream_id(), version) +
                 " to match its hash, but its content was changed";
      }
      if (!reason.empty()) {
        seen.problem = problems.add(event.stream_id(), version, p, offset, std::move(reason));
        continue;
      }
      seen.offsets.push_back(offset);
      seen.hash = event.hash();
    }
    if (!it->status().ok()) return from_rocksdb(it->status());
  }

  // 2. The stream index and heads against what the log holds.
  std::unique_ptr<rocksdb::Iterator> index(
      store_.db()->NewIterator(options, store_.family(Store::Family::kStreams)));
  for (index->SeekToFirst(); index->Valid(); index->Next()) {
    auto key = index->key().ToStringView();
    auto value = index->value().ToStringView();
    if (key.starts_with('h')) {
      const std::string stream_id(key.substr(1));
      report.set_streams(report.streams() + 1);
      auto head = decode_stream_head(std::string(value));
      if (!head.is_ok()) return head.status();
      SeenStream& seen = streams[stream_id];
      seen.has_head = true;
      if (seen.problem >= 0) continue;
      if (head->version > seen.offsets.size()) {
        seen.problem = problems.add(
            stream_id, seen.offsets.size() + 1, head->position.partition(), head->position.offset(),
            "Expected " + where(stream_id, seen.offsets.size() + 1) +
                " in the log (the stream is at version " + std::to_string(head->version) +
                "), but the log ends before it: the log was truncated");
      } else if (head->version < seen.offsets.size() || head->hash != seen.hash) {
        seen.problem = problems.add(stream_id, head->version, head->position.partition(),
                                    head->position.offset(),
                                    "Expected the head of stream '" + stream_id +
                                        "' to name its last event, but it does not");
      }
    } else if (key.starts_with('i')) {
      const size_t nul = key.find('\0');
      if (nul == std::string_view::npos || key.size() != nul + 9 || value.size() != 12)
        return Status::corruption("unreadable stream index entry");
      const std::string stream_id(key.substr(1, nul - 1));
      const uint64_t version = get_u64_be(key.substr(nul + 1));
      const uint32_t partition = get_u32_be(value);
      const uint64_t offset = get_u64_be(value.substr(4));
      SeenStream& seen = streams[stream_id];
      if (unreadable.count({partition, offset}) && version > 0) {
        // The partition walk could not read it, so it blamed the stream's next event (or its
        // head): this names the event itself.
        std::string reason =
            "Expected " + where(stream_id, version) + " to be readable, but its bytes were changed";
        if (seen.problem < 0)
          seen.problem = problems.add(stream_id, version, partition, offset, std::move(reason));
        else if (problems.version(seen.problem) >= version)
          problems.replace(seen.problem, stream_id, version, partition, offset, std::move(reason));
        continue;
      }
      if (seen.problem >= 0) continue;
      std::string reason;
      uint64_t reported = version;  // the version the problem names
      if (version == 0) {
        reason = "Expected the index of stream '" + stream_id +
                 "' to start at version 1, but an entry names version 0";
      } else if (version != seen.next_indexed) {
        reason = "Expected the index to name " + where(stream_id, seen.next_indexed) +
                 ", but it skips to version " + std::to_string(version) +
                 ": an index entry was deleted";
        reported = seen.next_indexed;
      } else if (version > seen.offsets.size()) {
        reason = "Expected " + where(stream_id, version) + " at " + std::to_string(partition) +
                 ":" + std::to_string(offset) + ", but the log does not hold it: it was deleted";
      } else if (seen.offsets[version - 1] != offset || seen.partition != partition) {
        reason = "Expected " + where(stream_id, version) + " at " + std::to_string(partition) +
                 ":" + std::to_string(offset) + ", but the log holds it elsewhere";
      }
      seen.next_indexed = version + 1;
      if (!reason.empty())
        seen.problem = problems.add(stream_id, reported, partition, offset, std::move(reason));
    }
  }
  if (!index->status().ok()) return from_rocksdb(index->status());
  // Streams the log holds whose head or last index entries are gone.
  std::vector<std::string> unchecked;
  for (const auto& [stream_id, seen] : streams)
    if (seen.problem < 0 && (!seen.has_head || seen.next_indexed <= seen.offsets.size()))
      unchecked.push_back(stream_id);
  std::sort(unchecked.begin(), unchecked.end());
  for (const auto& stream_id : unchecked) {
    const SeenStream& seen = streams[stream_id];
    if (seen.offsets.empty()) continue;
    const uint64_t version = seen.has_head ? seen.next_indexed : seen.offsets.size();
    problems.add(stream_id, version, seen.partition, seen.offsets[version - 1],
                 seen.has_head ? "Expected the index to name " + where(stream_id, version) +
                                     ", but it ends before it: an index entry was deleted"
                               : "Expected a head for stream '" + stream_id + "' (" +
                                     std::to_string(seen.offsets.size()) +
                                     " events in the log), but there is none: it was deleted");
  }
  for (const auto& gap : gaps) {
    problems.add("", 0, gap.partition, gap.from,
                 "Expected partition " + std::to_string(gap.partition) + " to hold offsets " +
                     std::to_string(gap.from) + " to " + std::to_string(gap.to - 1) +
                     ", but they are missing: events were deleted");
  }
  problems.finish();
  return report;
}

Result<api::VerifyReport> RocksDbLog::verify_stream(const std::string& stream_id) {
  api::VerifyReport report;
  report.set_ok(true);
  Problems problems(report, 1);
  auto head = stream_head(stream_id);
  if (!head.is_ok()) return head.status();
  if (head->version == 0) return Status::not_found("No stream '" + stream_id + "'");
  report.set_streams(1);
  std::string previous;
  uint64_t version = 0;
  while (version < head->version) {
    // One version at a time, so that an event the index names but the log lost or cannot
    // read is reported with its version.
    auto read = read_stream(stream_id, version + 1, 1);
    if (!read.is_ok() && read.status().code() != StatusCode::kCorruption) return read.status();
    if (read.is_ok() && read->empty()) break;  // the index ends: truncated (below)
    ++version;
    std::string reason;
    events::Position at = head->position;
    if (!read.is_ok()) {
      reason = "Expected " + where(stream_id, version) + " in the log: " + read.status().message();
    } else {
      const auto& event = read->front();
      at = event.position();
      if (event.stream_id() != stream_id || event.stream_version() != version) {
        reason = "Expected " + where(stream_id, version) + " where the index points, but found " +
                 where(event.stream_id(), event.stream_version()) + ": events were moved";
      } else if (event.previous_hash() != previous) {
        reason = "Expected " + where(stream_id, version) +
                 " to chain from the previous event's hash, but it does not";
      } else if (hash_chain::compute(event) != event.hash()) {
        reason = "Expected " + where(stream_id, version) +
                 " to match its hash, but its content was changed";
      }
      previous = event.hash();
    }
    if (!reason.empty()) {
      problems.add(stream_id, version, at.partition(), at.offset(), std::move(reason));
      problems.finish();
      return report;
    }
    report.set_events(version);
  }
  auto beyond = read_stream(stream_id, head->version + 1, 1);
  if (version < head->version) {
    problems.add(stream_id, version + 1, head->position.partition(), head->position.offset(),
                 "Expected " + where(stream_id, version + 1) +
                     " in the log, but the log ends before it: the log was truncated");
  } else if (head->hash != previous || !beyond.is_ok() || !beyond->empty()) {
    problems.add(
        stream_id, head->version, head->position.partition(), head->position.offset(),
        "Expected the head of stream '" + stream_id + "' to name its last event, but it does not");
  }
  problems.finish();
  return report;
}

namespace {

// One stream's head as the digest hashes it: u32be(len) id u64be(version) hash.
std::string head_record(const std::string& stream_id, uint64_t version, const std::string& hash) {
  std::string out;
  put_u32_be(out, static_cast<uint32_t>(stream_id.size()));
  out += stream_id;
  put_u64_be(out, version);
  out += hash;
  return out;
}

std::string combine(const std::vector<uint64_t>& ends,
                    std::vector<std::unique_ptr<Sha256>>& parts) {
  Sha256 all;
  for (uint32_t p = 0; p < ends.size(); ++p) {
    std::string header;
    put_u32_be(header, p);
    put_u64_be(header, ends[p]);
    all.update(header);
    all.update(parts[p]->finish());
  }
  return to_hex(all.finish());
}

}  // namespace

Result<LogDigest> RocksDbLog::digest_now() {
  std::unique_ptr<const rocksdb::Snapshot, std::function<void(const rocksdb::Snapshot*)>> snapshot(
      store_.db()->GetSnapshot(),
      [this](const rocksdb::Snapshot* s) { store_.db()->ReleaseSnapshot(s); });
  rocksdb::ReadOptions options;
  options.snapshot = snapshot.get();
  LogDigest out;
  std::unique_ptr<rocksdb::Iterator> log(
      store_.db()->NewIterator(options, store_.family(Store::Family::kLog)));
  for (uint32_t p = 0; p < partitions_.size(); ++p) {
    log->SeekForPrev(log_key(p, UINT64_MAX));
    const bool here =
        log->Valid() && log->key().size() == 12 && get_u32_be(log->key().ToStringView()) == p;
    out.end_offsets.push_back(here ? get_u64_be(log->key().ToStringView().substr(4)) + 1 : 0);
  }
  if (!log->status().ok()) return from_rocksdb(log->status());
  // The heads, in stream id order, each into its partition's hash (heads and events are
  // written in one batch, so the snapshot's heads are exactly those of its log).
  std::vector<std::unique_ptr<Sha256>> parts;
  for (size_t p = 0; p < partitions_.size(); ++p) parts.push_back(std::make_unique<Sha256>());
  std::unique_ptr<rocksdb::Iterator> heads(
      store_.db()->NewIterator(options, store_.family(Store::Family::kStreams)));
  for (heads->Seek("h"); heads->Valid() && heads->key().starts_with("h"); heads->Next()) {
    auto head = decode_stream_head(heads->value().ToString());
    if (!head.is_ok()) return head.status();
    if (head->position.partition() >= parts.size())
      return Status::corruption("a stream head names partition " +
                                std::to_string(head->position.partition()));
    parts[head->position.partition()]->update(
        head_record(heads->key().ToString().substr(1), head->version, head->hash));
    ++out.streams;
  }
  if (!heads->status().ok()) return from_rocksdb(heads->status());
  out.digest = combine(out.end_offsets, parts);
  return out;
}

// (Recomputes each stream's chain from the first event, so a cut costs the events before it.)
Result<LogDigest> RocksDbLog::digest_at(const std::vector<uint64_t>& end_offsets) {
  if (end_offsets.size() != partitions_.size())
    return Status::invalid_argument("a cut names " + std::to_string(end_offsets.size()) +
                                    " partitions, but the log has " +
                                    std::to_string(partitions_.size()));
  LogDigest out;
  out.end_offsets = end_offsets;
  std::vector<std::unique_ptr<Sha256>> parts;
  rocksdb::ReadOptions options;
  options.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(
      store_.db()->NewIterator(options, store_.family(Store::Family::kLog)));
  for (uint32_t p = 0; p < partitions_.size(); ++p) {
    std::map<std::string, std::pair<uint64_t, std::string>> heads;  // by stream id
    for (it->Seek(log_key(p, 0)); it->Valid(); it->Next()) {
      auto key = it->key().ToStringView();
      if (key.size() != 12 || get_u32_be(key) != p || get_u64_be(key.substr(4)) >= end_offsets[p])
        break;
      events::EventEnvelope event;
      // An unreadable event leaves its stream's head behind: the digest then differs.
      if (!event.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) continue;
      // The chain recomputed from the events' content, not the hashes stored with them: a
      // history rewritten with every later hash recomputed still changes the digest.
      auto& head = heads[event.stream_id()];
      event.set_previous_hash(head.second);
      head = {event.stream_version(), hash_chain::compute(event)};
    }
    if (!it->status().ok()) return from_rocksdb(it->status());
    parts.push_back(std::make_unique<Sha256>());
    for (const auto& [stream_id, head] : heads)
      parts.back()->update(head_record(stream_id, head.first, head.second));
    out.streams += heads.size();
  }
  out.digest = combine(end_offsets, parts);
  return out;
}

}  // namespace crm
