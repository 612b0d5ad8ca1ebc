// What the uWebSockets echo program does once `listen` has answered: print
// `ready PORT` as `bench serve` does, or fail with the program's name.
#pragma once

#include <cstdio>
#include <cstdlib>

#include "libusockets.h"

inline void ready_or_exit(const char *program, void *listen_socket) {
    if (!listen_socket) {
        std::fprintf(stderr, "%s: cannot listen\n", program);
        std::exit(1);
    }
    int bound = us_socket_local_port(0, (struct us_socket_t *) listen_socket);
    std::printf("ready %d\n", bound);
    std::fflush(stdout);
}
