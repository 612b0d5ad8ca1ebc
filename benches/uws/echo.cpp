// The uWebSockets side of the benchmark's echo and memory parts: a
// WebSocket echo server in uWebSockets' own idiom (`ws->send` in the
// message handler), compression off, on 127.0.0.1 at the port given
// (0: any), printing `ready PORT` as `bench serve` does.
#include "App.h"
#include "ready.h"

#include <cstdlib>

int main(int argc, char **argv) {
    int port = argc > 1 ? std::atoi(argv[1]) : 0;
    struct PerSocketData {};
    uWS::App()
        .ws<PerSocketData>("/*", {
            .compression = uWS::DISABLED,
            .maxPayloadLength = 64 * 1024 * 1024,
            .idleTimeout = 0,
            .maxBackpressure = 64 * 1024 * 1024,
            .message = [](auto *ws, std::string_view message, uWS::OpCode op) {
                ws->send(message, op, false);
            },
        })
        .listen("127.0.0.1", port, [](auto *listen_socket) { ready_or_exit("uws_echo", listen_socket); })
        .run();
}
