/* mock_child.h — starts tests/mock/mock_upstream as a child process on a free loopback port and
 * stops it, for tests and benchmarks. The executable's path comes from the environment variable
 * GF_MOCK_UPSTREAM (meson sets it for the tests that use mock_child_dep). */
#ifndef GF_MOCK_CHILD_H
#define GF_MOCK_CHILD_H

#include <sys/types.h>

struct mock_child {
    pid_t pid;
    int port;
    char url[64];  // "http://127.0.0.1:PORT"
};

/* Starts the mock with extra arguments (NULL-terminated list, may be NULL) and waits until it
 * printed its port. Returns 0, or -1 with a message on stderr (no GF_MOCK_UPSTREAM, exec
 * failure, no port line). */
int mock_child_start(struct mock_child *m, const char *const *args);
/* Sends SIGTERM, waits for the child and returns its exit status (-1 if it died abnormally).
 * A never-started or already-stopped child is a no-op returning 0. */
int mock_child_stop(struct mock_child *m);
/* Sends one request (Connection: close) to the mock on a fresh connection: extra_headers is
 * "Name: value\r\n" lines or NULL, body may be NULL. Stores up to cap-1 bytes of the raw
 * response body (chunk framing included), NUL-terminated, in out (may be NULL). Returns the HTTP
 * status, or -1 when no status line came back (e.g. the mock cut the connection first). For the
 * control routes (/mock/down, /mock/up, /mock/stats) and the mock's own tests. */
int mock_child_http(const struct mock_child *m, const char *method, const char *path,
                    const char *extra_headers, const char *body, char *out, size_t cap);

#endif
