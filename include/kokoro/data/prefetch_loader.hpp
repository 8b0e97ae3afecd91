// A batch loader with worker threads and prefetching: workers build batches
// (read features, pad, pin) ahead of the training loop, at most `prefetch`
// batches ahead, and the loop receives them in order. With no workers the
// batches are built on the caller's thread when asked for. An exception in a
// worker reaches the loop at the batch that failed.
//
// It is the range a task's train_data(epoch) returns: iterate it once.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace kokoro::data {

template <class Batch>
class PrefetchLoader {
 public:
  /// Builds the batch of the given clip indices.
  using MakeBatch = std::function<Batch(const std::vector<std::size_t>&)>;

  PrefetchLoader(std::vector<std::vector<std::size_t>> batches, MakeBatch make, int workers,
                 int prefetch)
      : batches_(std::move(batches)),
        make_(std::move(make)),
        slots_(batches_.size()),
        errors_(batches_.size()),
        prefetch_(std::max(1, prefetch)) {
    for (int w = 0; w < workers; ++w) threads_.emplace_back([this] { work(); });
  }

  ~PrefetchLoader() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    space_.notify_all();
    for (auto& t : threads_) t.join();
  }

  PrefetchLoader(const PrefetchLoader&) = delete;
  PrefetchLoader& operator=(const PrefetchLoader&) = delete;

  /// Batches in the epoch.
  std::int64_t size() const { return static_cast<std::int64_t>(batches_.size()); }

  class iterator {
   public:
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(PrefetchLoader* loader) : loader_(loader) { fetch(); }
    const Batch& operator*() const { return *current_; }
    iterator& operator++() {
      fetch();
      return *this;
    }
    void operator++(int) { fetch(); }
    bool operator==(std::default_sentinel_t) const { return !current_.has_value(); }

   private:
    void fetch() { current_ = loader_->next(); }
    PrefetchLoader* loader_ = nullptr;
    std::optional<Batch> current_;
  };

  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() { return {}; }

 private:
  std::optional<Batch> next() {
    if (consumed_ >= batches_.size()) return std::nullopt;
    const std::size_t i = consumed_++;
    if (threads_.empty()) return make_(batches_[i]);
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return slots_[i].has_value() || errors_[i]; });
    if (errors_[i]) std::rethrow_exception(errors_[i]);
    std::optional<Batch> batch = std::move(slots_[i]);
    slots_[i].reset();
    ++released_;
    lock.unlock();
    space_.notify_all();
    return batch;
  }

  void work() {
    while (true) {
      std::size_t i = 0;
      {
        std::unique_lock lock(mutex_);
        space_.wait(lock, [&] {
          return stop_ || claimed_ >= batches_.size() || claimed_ < released_ + prefetch_;
        });
        if (stop_ || claimed_ >= batches_.size()) return;
        i = claimed_++;
      }
      std::optional<Batch> batch;
      std::exception_ptr error;
      try {
        batch = make_(batches_[i]);
      } catch (...) {
        error = std::current_exception();
      }
      {
        std::lock_guard lock(mutex_);
        slots_[i] = std::move(batch);
        errors_[i] = error;
      }
      ready_.notify_all();
    }
  }

  std::vector<std::vector<std::size_t>> batches_;
  MakeBatch make_;
  std::vector<std::optional<Batch>> slots_;
  std::vector<std::exception_ptr> errors_;
  std::size_t prefetch_;
  std::size_t consumed_ = 0;  // the loop's position (its thread only)
  std::size_t claimed_ = 0;   // next batch a worker takes
  std::size_t released_ = 0;  // batches handed to the loop
  bool stop_ = false;
  std::mutex mutex_;
  std::condition_variable ready_, space_;
  std::vector<std::thread> threads_;
};

}  // namespace kokoro::data
