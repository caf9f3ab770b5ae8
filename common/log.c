/* log.c — one key=value line per event on stderr. Lines are written with one write() call so
 * lines from worker threads never interleave. Content and secrets never come here: only ids. */
#include "common/common.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static atomic_int current_level = GF_LOG_INFO;

static const char *level_names[] = {"debug", "info", "warn", "error", "off"};

void gf_log_set_level(enum gf_log_level level)
{
    atomic_store(&current_level, (int)level);
}

enum gf_log_level gf_log_get_level(void)
{
    return (enum gf_log_level)atomic_load(&current_level);
}

int gf_log_level_parse(const char *s, enum gf_log_level *out)
{
    for (size_t i = 0; i < GF_ARRAY_LEN(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum gf_log_level)i;
            return 0;
        }
    }
    return GF_EINVAL;
}

void gf_log(enum gf_log_level level, const char *comp, const char *fmt, ...)
{
    if ((int)level < atomic_load(&current_level) || level >= GF_LOG_OFF)
        return;
    char line[1024];
    char ts[40];
    gf_format_time(gf_wall_ms(), ts, sizeof(ts));
    int n = snprintf(line, sizeof(line), "ts=%s level=%s comp=%s ", ts, level_names[level], comp);
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
