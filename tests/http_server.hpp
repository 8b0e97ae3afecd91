// A one-thread HTTP/1.1 server on 127.0.0.1 for the tests of network
// loggers: it records each request (method, path, Authorization header,
// body) and answers with what the test's handler returns, or, when silent,
// accepts connections and never answers (a hung service). A PUT to a path
// under /cut/ is read half way and its connection closed without an answer:
// an upload that fails in the middle.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace kokoro::test {

class HttpServer {
 public:
  struct Request {
    std::string method;
    std::string path;
    std::string authorization;
    std::string body;
  };
  using Handler = std::function<std::string(const Request&)>;

  /// Answers every request with `handler(request)` as a 200 JSON response;
  /// with no handler, never answers.
  explicit HttpServer(Handler handler = nullptr) : handler_(std::move(handler)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;  // any free port
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::listen(listener_, 16) != 0) {
      throw std::runtime_error("test HTTP server: cannot listen on 127.0.0.1");
    }
    socklen_t size = sizeof(address);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &size);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }

  ~HttpServer() {
    stop_ = true;
    thread_.join();
    for (const int fd : held_) ::close(fd);
    ::close(listener_);
  }

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::vector<Request> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

  /// A port on 127.0.0.1 where nothing listens.
  static int dead_port() {
    HttpServer probe([](const Request&) { return std::string(); });
    return probe.port();  // closed when probe goes
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) continue;
      Request request;
      if (!read_request(fd, request)) {
        ::close(fd);
        continue;
      }
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(request);
      }
      if (!handler_) {
        held_.push_back(fd);  // never answered
        continue;
      }
      const std::string body = handler_(request);
      const std::string response =
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
          "Content-Length: " +
          std::to_string(body.size()) + "\r\n\r\n" + body;
      ::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
      ::close(fd);
    }
  }

  bool read_request(int fd, Request& request) {
    std::string data;
    char buffer[4096];
    std::size_t header_end = std::string::npos;
    std::size_t length = 0;
    while (true) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 2000) <= 0) return false;
      const auto n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) return false;
      data.append(buffer, static_cast<std::size_t>(n));
      if (header_end == std::string::npos) {
        header_end = data.find("\r\n\r\n");
        if (header_end == std::string::npos) continue;
        const std::string head = data.substr(0, header_end);
        const auto first_space = head.find(' ');
        request.method = head.substr(0, first_space);
        request.path =
            head.substr(first_space + 1, head.find(' ', first_space + 1) - first_space - 1);
        std::size_t at = head.find("\r\n");
        while (at != std::string::npos && at < head.size()) {
          const auto next = head.find("\r\n", at + 2);
          const auto line =
              head.substr(at + 2, next == std::string::npos ? std::string::npos : next - at - 2);
          const auto colon = line.find(':');
          std::string name = line.substr(0, colon);
          std::transform(name.begin(), name.end(), name.begin(),
                         [](unsigned char c) { return std::tolower(c); });
          std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
          value.erase(0, value.find_first_not_of(' '));
          if (name == "content-length") length = std::stoul(value);
          if (name == "authorization") request.authorization = value;
          at = next;
        }
      }
      if (request.method == "PUT" && request.path.rfind("/cut/", 0) == 0 &&
          data.size() >= header_end + 4 + length / 2) {
        request.body = data.substr(header_end + 4);
        {
          std::lock_guard lock(mutex_);
          requests_.push_back(request);
        }
        return false;  // closed half way through the body
      }
      if (data.size() >= header_end + 4 + length) {
        request.body = data.substr(header_end + 4, length);
        return true;
      }
    }
  }

  Handler handler_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<Request> requests_;
  std::vector<int> held_;
};

}  // namespace kokoro::test
