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
//   uws_broadcast SIZE     prints "ready PORT" once listening on 127.0.0.1
#include "App.h"
#include "ready.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>

namespace {

constexpr uint64_t PERIOD_NS = 10'000'000;
constexpr uint64_t MAX_BATCH = 32;

uWS::App *app;
std::string payload;
uint64_t start_ns, next_due;
std::chrono::steady_clock::time_point start;

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
    uint64_t first = std::max(next_due, due > MAX_BATCH ? due - MAX_BATCH : 0);
    for (uint64_t i = first; i < due; i++) {
        uint64_t at = start_ns + i * PERIOD_NS;
        for (int b = 0; b < 8; b++) {
            payload[b] = char(at >> (56 - 8 * b));
        }
        app->publish("all", payload, uWS::OpCode::BINARY, false);
    }
    next_due = due;
}

}  // namespace

int main(int argc, char **argv) {
    size_t size = std::max<size_t>(8, argc > 1 ? std::atoi(argv[1]) : 64);
    payload.assign(size, 'x');
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
        .listen("127.0.0.1", 0, [](auto *listen_socket) { ready_or_exit("uws_broadcast", listen_socket); });
    app = &server;
    start = std::chrono::steady_clock::now();
    start_ns = unix_ns();
    next_due = 0;
    struct us_loop_t *loop = (struct us_loop_t *) uWS::Loop::get();
    struct us_timer_t *timer = us_create_timer(loop, 0, 0);
    us_timer_set(timer, pass, 10, 10);
    server.run();
}
