/* mock_child.c — spawning and stopping the mock upstream for tests (see mock_child.h). The
 * child's stdout is a pipe from which the "port=N" line is read, then closed. */
#include "mock_child.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

int mock_child_start(struct mock_child *m, const char *const *args)
{
    memset(m, 0, sizeof(*m));
    const char *exe = getenv("GF_MOCK_UPSTREAM");
    if (exe == NULL || *exe == '\0') {
        fprintf(stderr, "mock_child: GF_MOCK_UPSTREAM is not set\n");
        return -1;
    }
    const char *argv[32] = {exe, "--port", "0"};
    size_t n = 3;
    for (size_t i = 0; args && args[i] && n + 1 < sizeof(argv) / sizeof(argv[0]); i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int pfd[2];
    if (pipe(pfd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execv(exe, (char *const *)argv);
        fprintf(stderr, "mock_child: cannot run %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    char line[64];
    size_t len = 0;
    while (len + 1 < sizeof(line)) {
        ssize_t r = read(pfd[0], line + len, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || line[len] == '\n')
            break;
        len++;
    }
    line[len] = '\0';
    close(pfd[0]);
    m->pid = pid;
    if (sscanf(line, "port=%d", &m->port) != 1 || m->port <= 0) {
        fprintf(stderr, "mock_child: no port line from %s (got '%s')\n", exe, line);
        mock_child_stop(m);
        return -1;
    }
    snprintf(m->url, sizeof(m->url), "http://127.0.0.1:%d", m->port);
    return 0;
}

int mock_child_stop(struct mock_child *m)
{
    if (m->pid <= 0)
        return 0;
    kill(m->pid, SIGTERM);
    int st = 0;
    while (waitpid(m->pid, &st, 0) < 0 && errno == EINTR) {
    }
    m->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int mock_child_http(const struct mock_child *m, const char *method, const char *path,
                    const char *extra_headers, const char *body, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)m->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    char req[16384];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "%sContent-Length: %zu\r\n\r\n%s",
                     method, path, extra_headers ? extra_headers : "", body ? strlen(body) : 0,
                     body ? body : "");
    if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    static char buf[1 << 20];  // tests are single-threaded
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == sizeof(buf) - 1)
            break;
    }
    close(fd);
    buf[len] = '\0';
    int status = -1;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    const char *rbody = strstr(buf, "\r\n\r\n");
    if (out && cap)
        snprintf(out, cap, "%s", rbody ? rbody + 4 : "");
    return status;
}
