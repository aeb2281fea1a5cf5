// A bounded least-recently-used map. Not thread-safe: each partition processor owns one.
#pragma once

#include <list>
#include <string>
#include <unordered_map>
#include <utility>

namespace crm {

template <typename Value>
class LruCache {
 public:
  explicit LruCache(size_t capacity) : capacity_(capacity) {}

  Value* find(const std::string& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    entries_.splice(entries_.begin(), entries_, it->second);
    return &it->second->second;
  }

  void put(const std::string& key, Value value) {
    if (auto* existing = find(key)) {
      *existing = std::move(value);
      return;
    }
    entries_.emplace_front(key, std::move(value));
    index_[key] = entries_.begin();
    if (entries_.size() > capacity_) {
      index_.erase(entries_.back().first);
      entries_.pop_back();
    }
  }

  void erase(const std::string& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return;
    entries_.erase(it->second);
    index_.erase(it);
  }

  void clear() {
    index_.clear();
    entries_.clear();
  }

  size_t size() const { return entries_.size(); }

 private:
  using Entry = std::pair<std::string, Value>;
  size_t capacity_;
  std::list<Entry> entries_;
  std::unordered_map<std::string, typename std::list<Entry>::iterator> index_;
};

}  // namespace crm
