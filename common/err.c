/* err.c — error codes and the first-error-wins message buffer. The first error set is kept
 * because it names the root cause; whatever fails after it is a consequence. */
#include "common/common.h"

#include <stdio.h>
#include <string.h>

int gf_err_set(struct gf_err *err, int code, const char *fmt, ...)
{
    if (err == NULL || err->code != 0)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

int gf_err_prefix(struct gf_err *err, const char *prefix)
{
    if (err == NULL || prefix == NULL)
        return err ? err->code : GF_EINVAL;
    char tmp[2 * sizeof(err->msg)];  // room for both; the result is cut to msg's size
    const char *rest = err->msg[0] != '\0' ? err->msg : gf_strerror(err->code);
    snprintf(tmp, sizeof(tmp), "%.200s: %s", prefix, rest);
    size_t n = strnlen(tmp, sizeof(err->msg) - 1);
    memcpy(err->msg, tmp, n);
    err->msg[n] = '\0';
    return err->code;
}

void gf_err_clear(struct gf_err *err)
{
    if (err == NULL)
        return;
    err->code = 0;
    err->msg[0] = '\0';
}

const char *gf_strerror(int code)
{
    switch (code) {
    case GF_OK:
        return "success";
    case GF_ENOMEM:
        return "out of memory";
    case GF_EINVAL:
        return "invalid argument";
    case GF_EIO:
        return "input/output error";
    case GF_ETOOBIG:
        return "too large";
    case GF_EFORMAT:
        return "bad format";
    case GF_EAGAIN:
        return "temporarily unavailable";
    case GF_ENOTFOUND:
        return "not found";
    case GF_EPERM:
        return "permission denied";
    case GF_ETIMEDOUT:
        return "timed out";
    case GF_EUPSTREAM:
        return "upstream failure";
    case GF_ECANCELED:
        return "cancelled";
    case GF_EUNSUPPORTED:
        return "not supported";
    case GF_ELIMIT:
        return "rate limited";
    case GF_EPOLICY:
        return "refused by policy";
    default:
        return "unknown error";
    }
}
