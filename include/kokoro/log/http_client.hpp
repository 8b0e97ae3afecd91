// A small HTTPS client on libcurl for the loggers that talk to a service:
// JSON POSTs with basic authentication, bounded by a connect timeout and a
// total timeout, and file uploads (PUT, streamed from disk, given up when
// they stall), and abortable from another thread (the flag is polled by
// curl's progress callback), so a dead or slow network never holds up the
// caller for longer than it chose.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include <curl/curl.h>
#include <fmt/format.h>

namespace kokoro {

struct HttpResponse {
  long status = 0;    ///< HTTP status; 0 when no response arrived
  std::string body;   ///< the response body
  std::string error;  ///< transport error (refused, timed out, aborted); empty when none

  bool ok() const { return error.empty() && status >= 200 && status < 300; }
};

struct HttpOptions {
  long connect_timeout_ms = 5000;
  long timeout_ms = 20000;  ///< the whole request
  std::string user_agent = "kokoro";
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options = {}) : options_(std::move(options)) {
    static std::once_flag global;
    std::call_once(global, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    curl_ = curl_easy_init();
  }
  ~HttpClient() {
    if (curl_) curl_easy_cleanup(curl_);
  }
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// POSTs `json` to `url` with basic authentication `user:password` (none
  /// when both are empty). Gives up when `abort` becomes true.
  HttpResponse post_json(const std::string& url, const std::string& json, const std::string& user,
                         const std::string& password, const std::atomic<bool>* abort = nullptr) {
    HttpResponse response;
    if (!curl_) {
      response.error = "libcurl could not be initialised";
      return response;
    }
    curl_easy_reset(curl_);
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
    char error[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, json.data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(json.size()));
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, options_.timeout_ms);
    if (!user.empty() || !password.empty()) {
      curl_easy_setopt(curl_, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
      curl_easy_setopt(curl_, CURLOPT_USERNAME, user.c_str());
      curl_easy_setopt(curl_, CURLOPT_PASSWORD, password.c_str());
    }
    perform(response, error, abort);
    curl_slist_free_all(headers);
    return response;
  }

  /// PUTs `body`, or the file `path` when `body` is null, to `url` with
  /// `headers` ("Name: value"). A large file is streamed from disk; instead
  /// of a total timeout the transfer is given up when it moves under 1 KiB/s
  /// for `stall_seconds`, or when `abort` becomes true.
  HttpResponse put(const std::string& url, const std::string* body,
                   const std::filesystem::path& path, const std::vector<std::string>& headers,
                   long stall_seconds = 60, const std::atomic<bool>* abort = nullptr) {
    HttpResponse response;
    if (!curl_) {
      response.error = "libcurl could not be initialised";
      return response;
    }
    std::FILE* file = nullptr;
    curl_off_t size = 0;
    if (body == nullptr) {
      file = std::fopen(path.c_str(), "rb");
      if (file == nullptr) {
        response.error = fmt::format("{}: cannot open", path.string());
        return response;
      }
      std::error_code ec;
      size = static_cast<curl_off_t>(std::filesystem::file_size(path, ec));
    } else {
      size = static_cast<curl_off_t>(body->size());
    }
    MemoryReader memory{body, 0};
    curl_easy_reset(curl_);
    curl_slist* list = curl_slist_append(nullptr, "Expect:");
    for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
    char error[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl_, CURLOPT_INFILESIZE_LARGE, size);
    if (file) {
      curl_easy_setopt(curl_, CURLOPT_READDATA, file);  // libcurl's default reader: fread
    } else {
      curl_easy_setopt(curl_, CURLOPT_READFUNCTION, &HttpClient::on_read);
      curl_easy_setopt(curl_, CURLOPT_READDATA, &memory);
    }
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_TIME, stall_seconds);
    perform(response, error, abort);
    curl_slist_free_all(list);
    if (file) std::fclose(file);
    return response;
  }

 private:
  /// The options every request shares, then the request; its status or
  /// transport error into `response`.
  void perform(HttpResponse& response, char* error, const std::atomic<bool>* abort) {
    curl_easy_setopt(curl_, CURLOPT_USERAGENT, options_.user_agent.c_str());
    curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, options_.connect_timeout_ms);
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM: safe in a thread
    curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &HttpClient::on_body);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &response.body);
    if (abort) {
      curl_easy_setopt(curl_, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(curl_, CURLOPT_XFERINFOFUNCTION, &HttpClient::on_progress);
      curl_easy_setopt(curl_, CURLOPT_XFERINFODATA, abort);
    }
    const CURLcode code = curl_easy_perform(curl_);
    if (code != CURLE_OK) {
      response.error = error[0] ? error : curl_easy_strerror(code);
    } else {
      curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &response.status);
    }
  }

  struct MemoryReader {
    const std::string* data;
    std::size_t at;
  };
  static std::size_t on_read(char* out, std::size_t size, std::size_t count, void* source) {
    auto* r = static_cast<MemoryReader*>(source);
    const auto n = std::min(size * count, r->data->size() - r->at);
    std::memcpy(out, r->data->data() + r->at, n);
    r->at += n;
    return n;
  }
  static std::size_t on_body(char* data, std::size_t size, std::size_t count, void* out) {
    static_cast<std::string*>(out)->append(data, size * count);
    return size * count;
  }
  static int on_progress(void* abort, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<const std::atomic<bool>*>(abort)->load() ? 1 : 0;
  }

  HttpOptions options_;
  CURL* curl_ = nullptr;
};

}  // namespace kokoro
