/* admission.c — the global admission limit: at most limits.max_inflight generation requests at
 * once, and none while the process's resident memory is above limits.max_rss_bytes. A request
 * past either gets 503 with Retry-After at once, before its body is parsed, so that overload is
 * refused cheaply instead of queued. Invariant: gen_inflight counts exactly the requests that
 * entered and have not left (pipeline.c pairs the calls). */
#include "gateway/gateway_int.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define RSS_SAMPLE_NS 20000000ull  // read /proc at most every 20 ms

int64_t gf_rss_bytes(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    // "size resident shared ...", in pages
    char *sp = strchr(buf, ' ');
    if (sp == NULL)
        return -1;
    char *end = strchr(sp + 1, ' ');
    if (end != NULL)
        *end = '\0';
    int64_t pages;
    if (gf_parse_i64(sp + 1, 0, INT64_MAX / 65536, &pages) != 0)
        return -1;
    long ps = sysconf(_SC_PAGESIZE);
    return pages * (ps > 0 ? ps : 4096);
}

int gf_admission_enter(struct gf_gateway *gw, struct gf_err *err)
{
    const struct gf_config *cfg = gw->cfg;
    if (cfg->max_inflight > 0 && gw->gen_inflight >= cfg->max_inflight) {
        gw->metrics.admission_refused++;
        return gf_err_set(err, GF_EAGAIN,
                          "the server is at capacity (limits.max_inflight); retry later");
    }
    if (cfg->max_rss_bytes > 0) {
        uint64_t now = gf_now_ns();
        if (gw->rss_at_ns == 0 || now - gw->rss_at_ns >= RSS_SAMPLE_NS) {
            gw->rss_last = gf_rss_bytes();
            gw->rss_at_ns = now;
        }
        if (gw->rss_last > cfg->max_rss_bytes) {
            gw->metrics.admission_refused++;
            return gf_err_set(err, GF_EAGAIN,
                              "the server is over its memory cap (limits.max_rss_bytes); "
                              "retry later");
        }
    }
    gw->gen_inflight++;
    return 0;
}

void gf_admission_leave(struct gf_gateway *gw)
{
    gw->gen_inflight--;
}
