/* metrics.c — the gateway's counters and their Prometheus text rendering for GET /metrics.
 * Counters are plain integers updated on the loop thread only; rendering reads them there too,
 * so no locking is needed. Statuses are kept in a fixed table (others fold into "other"). */
#include "gateway/gateway_int.h"

static const int statuses[GF_METRIC_STATUSES] = {200, 400, 401, 403, 404, 405, 408, 413, 415,
                                                 429, 431, 499, 500, 502, 503, 504, 0};
static const double buckets_s[GF_METRIC_BUCKETS - 1] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

static const char *const route_names[GF_ROUTE_COUNT] = {
    [GF_ROUTE_NONE] = "none",          [GF_ROUTE_CHAT] = "chat_completions",
    [GF_ROUTE_COMPLETIONS] = "completions", [GF_ROUTE_MODELS] = "models",
    [GF_ROUTE_HEALTHZ] = "healthz",    [GF_ROUTE_READYZ] = "readyz",
    [GF_ROUTE_METRICS] = "metrics",    [GF_ROUTE_OTHER] = "other",
    [GF_ROUTE_MODERATIONS] = "moderations",
};

const char *gf_route_name(enum gf_route route)
{
    return (unsigned)route < GF_ROUTE_COUNT ? route_names[route] : "other";
}

static int status_slot(int status)
{
    for (int i = 0; i < GF_METRIC_STATUSES && statuses[i] != 0; i++)
        if (statuses[i] == status)
            return i;
    return GF_METRIC_STATUSES - 1;  // "other"
}

void gf_metrics_request(struct gf_metrics *m, enum gf_route route, int status, uint64_t ns)
{
    if ((unsigned)route >= GF_ROUTE_COUNT)
        route = GF_ROUTE_OTHER;
    m->requests[route][status_slot(status)]++;
    double s = (double)ns / 1e9;
    int b = 0;
    while (b < GF_METRIC_BUCKETS - 1 && s > buckets_s[b])
        b++;
    m->latency_bucket[route][b]++;
    m->latency_sum[route] += s;
    m->latency_count[route]++;
}

int gf_metrics_render(const struct gf_metrics *m, struct gf_buf *out)
{
    int rc = gf_buf_puts(out, "# HELP gardefou_requests_total HTTP requests by route and status.\n"
                              "# TYPE gardefou_requests_total counter\n");
    for (int r = 0; r < GF_ROUTE_COUNT && rc == 0; r++) {
        for (int s = 0; s < GF_METRIC_STATUSES && rc == 0; s++) {
            if (m->requests[r][s] == 0)
                continue;
            if (s == GF_METRIC_STATUSES - 1)
                rc = gf_buf_printf(out, "gardefou_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                                   route_names[r], (unsigned long long)m->requests[r][s]);
            else
                rc = gf_buf_printf(out, "gardefou_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                                   route_names[r], statuses[s],
                                   (unsigned long long)m->requests[r][s]);
        }
    }
    rc = rc ? rc
            : gf_buf_puts(out, "# HELP gardefou_request_duration_seconds Time from request to end.\n"
                               "# TYPE gardefou_request_duration_seconds histogram\n");
    for (int r = 0; r < GF_ROUTE_COUNT && rc == 0; r++) {
        if (m->latency_count[r] == 0)
            continue;
        uint64_t cum = 0;
        for (int b = 0; b < GF_METRIC_BUCKETS && rc == 0; b++) {
            cum += m->latency_bucket[r][b];
            if (b < GF_METRIC_BUCKETS - 1)
                rc = gf_buf_printf(out,
                                   "gardefou_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
                                   "%llu\n",
                                   route_names[r], buckets_s[b], (unsigned long long)cum);
            else
                rc = gf_buf_printf(out,
                                   "gardefou_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} "
                                   "%llu\n",
                                   route_names[r], (unsigned long long)cum);
        }
        rc = rc ? rc
                : gf_buf_printf(out,
                                "gardefou_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                                "gardefou_request_duration_seconds_count{route=\"%s\"} %llu\n",
                                route_names[r], m->latency_sum[r], route_names[r],
                                (unsigned long long)m->latency_count[r]);
    }
    rc = rc ? rc
            : gf_buf_printf(
                  out,
                  "# HELP gardefou_upstream_errors_total Generations that failed in the engine.\n"
                  "# TYPE gardefou_upstream_errors_total counter\n"
                  "gardefou_upstream_errors_total %llu\n"
                  "# HELP gardefou_open_streams SSE streams being sent.\n"
                  "# TYPE gardefou_open_streams gauge\n"
                  "gardefou_open_streams %lld\n"
                  "# HELP gardefou_inflight_requests Requests between arrival and end.\n"
                  "# TYPE gardefou_inflight_requests gauge\n"
                  "gardefou_inflight_requests %lld\n"
                  "# HELP gardefou_open_connections Client connections open.\n"
                  "# TYPE gardefou_open_connections gauge\n"
                  "gardefou_open_connections %lld\n"
                  "# HELP gardefou_connections_total Client connections by outcome.\n"
                  "# TYPE gardefou_connections_total counter\n"
                  "gardefou_connections_total{outcome=\"accepted\"} %llu\n"
                  "gardefou_connections_total{outcome=\"refused\"} %llu\n"
                  "gardefou_connections_total{outcome=\"timed_out\"} %llu\n"
                  "# HELP gardefou_admission_refused_total Generations refused by "
                  "limits.max_inflight or limits.max_rss_bytes.\n"
                  "# TYPE gardefou_admission_refused_total counter\n"
                  "gardefou_admission_refused_total %llu\n"
                  "# HELP gardefou_received_bytes_total Request body bytes received.\n"
                  "# TYPE gardefou_received_bytes_total counter\n"
                  "gardefou_received_bytes_total %llu\n"
                  "# HELP gardefou_sent_bytes_total Response body bytes sent.\n"
                  "# TYPE gardefou_sent_bytes_total counter\n"
                  "gardefou_sent_bytes_total %llu\n",
                  (unsigned long long)m->upstream_errors, (long long)m->open_streams,
                  (long long)m->inflight, (long long)m->open_conns,
                  (unsigned long long)m->conns_accepted, (unsigned long long)m->conns_refused,
                  (unsigned long long)m->conns_timed_out,
                  (unsigned long long)m->admission_refused, (unsigned long long)m->bytes_in,
                  (unsigned long long)m->bytes_out);
    return rc;
}
