/* policy.c — the compiled policy object: reference counting, teardown, accessors and the
 * built-in default policy. A policy is immutable after gf_policy_parse; the reference count is
 * the only thing that changes, atomically, so any thread may hold and drop references. */
#include "policy/policy_int.h"

#include <string.h>

static const char default_policy[] =
    "{\n"
    "  \"version\": 1,\n"
    "  \"name\": \"gardefou built-in default\",\n"
    "  \"default\": \"allow\",\n"
    "  \"categories\": {\"illicit\": 0.9, \"self-harm\": 0.9, \"prompt-injection\": 0.9},\n"
    "  \"rules\": [\n"
    "    {\"id\": \"secrets\", \"stage\": \"both\", \"detector\": \"pii\", \"types\": [\"secrets\"],\n"
    "     \"action\": \"redact\"},\n"
    "    {\"id\": \"payment-data\", \"stage\": \"output\", \"detector\": \"pii\",\n"
    "     \"types\": [\"credit_card\", \"iban\", \"ssn\"], \"action\": \"redact\"},\n"
    "    {\"id\": \"illicit\", \"stage\": \"input\", \"classifier\": \"illicit\", \"action\": \"block\",\n"
    "     \"optional\": true},\n"
    "    {\"id\": \"self-harm\", \"stage\": \"input\", \"classifier\": \"self-harm\", \"action\": \"flag\",\n"
    "     \"optional\": true},\n"
    "    {\"id\": \"prompt-injection\", \"stage\": \"input\", \"classifier\": \"prompt-injection\",\n"
    "     \"action\": \"flag\", \"optional\": true}\n"
    "  ]\n"
    "}\n";

const char *gf_policy_default_json(void)
{
    return default_policy;
}

int gf_policy_load_default(struct gf_clf_registry *registry, struct gf_policy **out,
                           struct gf_err *err)
{
    return gf_policy_parse(default_policy, sizeof(default_policy) - 1, "(built-in default)",
                           registry, out, err);
}

const char *gf_action_name(enum gf_action a)
{
    switch (a) {
    case GF_ACTION_ALLOW: return "allow";
    case GF_ACTION_FLAG: return "flag";
    case GF_ACTION_REDACT: return "redact";
    case GF_ACTION_BLOCK: return "block";
    }
    return "?";
}

const char *gf_stage_name(enum gf_stage s)
{
    return s == GF_STAGE_INPUT ? "input" : s == GF_STAGE_OUTPUT ? "output" : "both";
}

int gf_stage_parse(const char *s, bool allow_both, enum gf_stage *out)
{
    if (strcmp(s, "input") == 0)
        *out = GF_STAGE_INPUT;
    else if (strcmp(s, "output") == 0)
        *out = GF_STAGE_OUTPUT;
    else if (allow_both && strcmp(s, "both") == 0)
        *out = GF_STAGE_BOTH;
    else
        return GF_EINVAL;
    return 0;
}

void gf_policy_free_rule(struct rule *r)
{
    if (r == NULL)
        return;
    gf_detector_free(r->det);
    gf_free(r->id);
    gf_free(r->message);
    gf_free(r->label);
    gf_free(r);
}

struct gf_policy *gf_policy_ref(struct gf_policy *p)
{
    if (p)
        atomic_fetch_add(&p->refs, 1);
    return p;
}

void gf_policy_unref(struct gf_policy *p)
{
    if (p == NULL || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    for (size_t i = 0; i < p->n_rules; i++)
        gf_policy_free_rule(p->rules[i]);
    gf_free(p->rules);
    for (size_t i = 0; i < p->n_groups; i++) {
        gf_free(p->groups[i].name);
        gf_free(p->groups[i].refusal);
        gf_free(p->groups[i].rules);
    }
    gf_free(p->groups);
    for (size_t i = 0; i < p->n_cats; i++)
        gf_free(p->cats[i].name);
    gf_free(p->cats);
    for (size_t i = 0; i < p->n_clfs; i++) {
        gf_classifier_unref(p->clf_in ? p->clf_in[i] : NULL);
        gf_classifier_unref(p->clf_out ? p->clf_out[i] : NULL);
    }
    gf_free(p->clf_in);
    gf_free(p->clf_out);
    gf_free(p->clfs);
    gf_clf_registry_unref(p->reg);
    gf_free(p->source);
    gf_free(p->warnings);
    gf_free(p);
}

const char *gf_policy_version(const struct gf_policy *p)
{
    return p->version;
}

const char *gf_policy_source(const struct gf_policy *p)
{
    return p->source;
}

const char *gf_policy_warnings(const struct gf_policy *p)
{
    return p->warnings ? p->warnings : "";
}

const struct group *gf_policy_group(const struct gf_policy *p, const char *name)
{
    if (name)
        for (size_t i = 0; i < p->n_groups; i++)
            if (strcmp(p->groups[i].name, name) == 0)
                return &p->groups[i];
    return &p->groups[0];
}

bool gf_policy_has_group(const struct gf_policy *p, const char *group)
{
    for (size_t i = 0; i < p->n_groups; i++)
        if (strcmp(p->groups[i].name, group) == 0)
            return true;
    return false;
}

size_t gf_policy_rule_count(const struct gf_policy *p, const char *group, enum gf_stage stage)
{
    const struct group *g = gf_policy_group(p, group);
    size_t n = 0;
    for (size_t i = 0; i < g->n_rules; i++)
        n += (g->rules[i]->stage & stage) && !g->rules[i]->skipped;
    return n;
}

void gf_policy_abuse(const struct gf_policy *p, int *blocks, int64_t *window_ms)
{
    *blocks = p->abuse_blocks;
    *window_ms = p->abuse_window_ms;
}

size_t gf_policy_holdback(const struct gf_policy *p)
{
    return p->holdback;
}

double gf_policy_category_threshold(const struct gf_policy *p, const char *category)
{
    for (size_t i = 0; i < p->n_cats; i++)
        if (strcmp(p->cats[i].name, category) == 0)
            return p->cats[i].threshold;
    return 0.5;
}

struct gf_clf_registry *gf_policy_registry(const struct gf_policy *p)
{
    return p->reg;
}
