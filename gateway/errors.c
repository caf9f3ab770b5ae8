/* errors.c — the one mapping from GF_E* codes to HTTP statuses and OpenAI-shaped error bodies
 * {"error":{"message","type","param","code"}}. Every error the gateway sends goes through here,
 * so a code always yields the same status wherever it is raised. */
#include "gateway/gateway.h"

#include <string.h>

struct gf_http_error gf_http_error_of(int code)
{
    switch (code) {
    case GF_EINVAL:
    case GF_EFORMAT:
        return (struct gf_http_error){400, "invalid_request_error", NULL};
    case GF_EUNSUPPORTED:
        return (struct gf_http_error){400, "invalid_request_error", "unsupported_parameter"};
    case GF_EPOLICY:
        return (struct gf_http_error){400, "invalid_request_error", "content_policy_violation"};
    case GF_EPERM:
        return (struct gf_http_error){401, "authentication_error", "invalid_api_key"};
    case GF_ENOTFOUND:
        return (struct gf_http_error){404, "invalid_request_error", "not_found"};
    case GF_ETOOBIG:
        return (struct gf_http_error){413, "invalid_request_error", "request_too_large"};
    case GF_ELIMIT:
        return (struct gf_http_error){429, "rate_limit_error", "rate_limit_exceeded"};
    case GF_EUPSTREAM:
        return (struct gf_http_error){502, "upstream_error", "bad_gateway"};
    case GF_EAGAIN:
        return (struct gf_http_error){503, "server_error", "not_ready"};
    case GF_ETIMEDOUT:
        return (struct gf_http_error){504, "upstream_error", "timeout"};
    case GF_ECANCELED:
        return (struct gf_http_error){499, "server_error", "canceled"};
    case GF_ENOMEM:
    case GF_EIO:
    default:
        return (struct gf_http_error){500, "server_error", "internal_error"};
    }
}

int gf_http_error_json(struct gf_buf *out, const struct gf_http_error *he, const char *message,
                       const char *param)
{
    int rc = gf_buf_puts(out, "{\"error\":{\"message\":");
    if (message == NULL)
        message = "";
    rc = rc ? rc : gf_buf_append_json_str(out, message, strlen(message));
    rc = rc ? rc : gf_buf_puts(out, ",\"type\":");
    rc = rc ? rc : gf_buf_append_json_str(out, he->type, strlen(he->type));
    rc = rc ? rc : gf_buf_puts(out, ",\"param\":");
    if (param != NULL)
        rc = rc ? rc : gf_buf_append_json_str(out, param, strlen(param));
    else
        rc = rc ? rc : gf_buf_puts(out, "null");
    rc = rc ? rc : gf_buf_puts(out, ",\"code\":");
    if (he->code != NULL)
        rc = rc ? rc : gf_buf_append_json_str(out, he->code, strlen(he->code));
    else
        rc = rc ? rc : gf_buf_puts(out, "null");
    return rc ? rc : gf_buf_puts(out, "}}");
}
