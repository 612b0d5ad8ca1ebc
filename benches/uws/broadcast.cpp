// The uWebSockets side of the benchmark's broadcast part
// (benches/src/broadcast.rs): every connection subscribes to one topic
// in `open`, and a timer on the event loop `publish`es to it, uWebSockets'
// own broadcast idiom (its examples/Broadcast.cpp). Compression off;
// 1 MiB of backpressure per connection, after which uWebSockets drops
// what a connection cannot take, as the rfc6455 server's 1 MiB backlog.
//
// The publisher is the other servers': a message is due every 10 ms; each
// pass publishes all that fell due since the last (up to 32), each
// stamped in its first 8 bytes with the time it was due, in nanoseconds
// since the Unix epoch, big-endian.
//
// With THREADS above 1, its `EchoServerThreaded` pattern: one app per
// thread, each with its own loop, listening socket (SO_REUSEPORT, which
// uSockets sets, so the kernel spreads the connections), subscribers and
// timer; every thread publishes the same stamped messages to its own.
//
//   uws_broadcast SIZE [THREADS]   prints "ready PORT" once listening on 127.0.0.1
#include "App.h"

#include <algorithm>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <chrono>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr uint64_t PERIOD_NS = 10'000'000;
constexpr uint64_t MAX_BATCH = 32;

// Shared by the threads, set before any starts: the publisher's clock.
size_t size;
uint64_t start_ns;
std::chrono::steady_clock::time_point start;

// One thread's app and publisher.
struct Worker {
    uWS::App *app;
    std::string payload;
    uint64_t next_due;
};
thread_local Worker *worker;

uint64_t unix_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void pass(struct us_timer_t *) {
    uint64_t elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::steady_clock::now() - start)
                           .count();
    uint64_t due = elapsed / PERIOD_NS + 1;
    uint64_t first = std::max(worker->next_due, due > MAX_BATCH ? due - MAX_BATCH : 0);
    for (uint64_t i = first; i < due; i++) {
        uint64_t at = start_ns + i * PERIOD_NS;
        for (int b = 0; b < 8; b++) {
            worker->payload[b] = char(at >> (56 - 8 * b));
        }
        worker->app->publish("all", worker->payload, uWS::OpCode::BINARY, false);
    }
    worker->next_due = due;
}

// Runs one app on this thread: listens on `port` (0: any), reports the
// port it got through `bound`, publishes every 10 ms.
void serve(int port, std::promise<int> *bound) {
    Worker own{nullptr, std::string(size, 'x'), 0};
    worker = &own;
    struct PerSocketData {};
    uWS::App server;
    server
        .ws<PerSocketData>("/*", {
            .compression = uWS::DISABLED,
            .maxPayloadLength = 16 * 1024,
            .idleTimeout = 0,
            .maxBackpressure = 1 << 20,
            .closeOnBackpressureLimit = false,
            .sendPingsAutomatically = false,
            .open = [](auto *ws) { ws->subscribe("all"); },
        })
        .listen("127.0.0.1", port, [&](auto *listen_socket) {
            if (!listen_socket) {
                std::fprintf(stderr, "uws_broadcast: cannot listen\n");
                std::exit(1);
            }
            bound->set_value(us_socket_local_port(0, (struct us_socket_t *) listen_socket));
        });
    own.app = &server;
    struct us_loop_t *loop = (struct us_loop_t *) uWS::Loop::get();
    struct us_timer_t *timer = us_create_timer(loop, 0, 0);
    us_timer_set(timer, pass, 10, 10);
    server.run();
}

// A port free on 127.0.0.1 now (the kernel's pick, released at once).
int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || bind(fd, (sockaddr *) &addr, len) != 0 || getsockname(fd, (sockaddr *) &addr, &len) != 0) {
        std::fprintf(stderr, "uws_broadcast: no free port\n");
        std::exit(1);
    }
    close(fd);
    return ntohs(addr.sin_port);
}

}  // namespace

int main(int argc, char **argv) {
    size = std::max<size_t>(8, argc > 1 ? std::atoi(argv[1]) : 64);
    int threads = std::max(1, argc > 2 ? std::atoi(argv[2]) : 1);
    start = std::chrono::steady_clock::now();
    start_ns = unix_ns();
    // uSockets sets SO_REUSEPORT only on a port given: with more than one
    // thread, a free port is found first, then every thread listens on it.
    int port = threads > 1 ? free_port() : 0;
    std::vector<std::thread> running;
    std::vector<std::promise<int>> bound(threads);
    for (auto &promise : bound) {
        running.emplace_back(serve, port, &promise);
        port = promise.get_future().get();
    }
    std::printf("ready %d\n", port);
    std::fflush(stdout);
    for (auto &thread : running) {
        thread.join();
    }
}
