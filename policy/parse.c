/* parse.c — reads a policy file and validates it into a compiled policy. Every problem is
 * reported once, as "FILE: JSON.PATH: what is wrong" (first error wins), and nothing is kept
 * from a policy that fails: the caller's current policy stays in force. Groups are resolved
 * after the base rules: a group starts from the rules of the group it extends (unless
 * "override"), a rule with an inherited id replaces it in place, new rules are appended and
 * "remove" drops inherited ones. */
#include "policy/policy_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

// Bounded formatting of paths and messages; cutting an overlong JSON path is fine.
#define FMT(buf, cap, ...)                                                                     \
    do {                                                                                       \
        if (snprintf(buf, cap, __VA_ARGS__) < 0)                                               \
            (buf)[0] = '\0';                                                                   \
    } while (0)

struct ctx {
    struct gf_policy *p;
    struct gf_clf_registry *reg;
    struct gf_err *err;
    struct gf_buf warn;
};

static int bad(struct ctx *c, const char *path, const char *fmt, const char *arg)
{
    char what[200];
    FMT(what, sizeof(what), fmt, arg ? arg : "");
    return gf_err_set(c->err, GF_EINVAL, "%s: %s", path, what);
}

static int oom(struct ctx *c)
{
    return gf_err_set(c->err, GF_ENOMEM, "out of memory loading the policy");
}

static void sub(char *out, size_t cap, const char *path, const char *key)
{
    FMT(out, cap, "%s%s%s", path, path[0] ? "." : "", key);
}

static void idx(char *out, size_t cap, const char *path, const char *key, int i)
{
    FMT(out, cap, "%s%s%s[%d]", path, path[0] && key[0] ? "." : "", key, i);
}

// Refuses keys outside allowed and keys given twice.
static int check_keys(struct ctx *c, const cJSON *obj, const char *path,
                      const char *const *allowed)
{
    for (const cJSON *k = obj->child; k; k = k->next) {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(k->string, allowed[i]) == 0;
        char p[160];
        sub(p, sizeof(p), path, k->string);
        if (!ok)
            return bad(c, p, "unknown key", NULL);
        for (const cJSON *j = obj->child; j != k; j = j->next)
            if (strcmp(j->string, k->string) == 0)
                return bad(c, p, "key given twice", NULL);
    }
    return 0;
}

static int get_string(struct ctx *c, const cJSON *obj, const char *key, const char *path,
                      bool required, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char p[160];
    sub(p, sizeof(p), path, key);
    *out = NULL;
    if (v == NULL)
        return required ? bad(c, p, "missing (expected a string)", NULL) : 0;
    if (!cJSON_IsString(v))
        return bad(c, p, "expected a string", NULL);
    *out = v->valuestring;
    return 0;
}

static int get_bool(struct ctx *c, const cJSON *obj, const char *key, const char *path, bool def,
                    bool *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char p[160];
    sub(p, sizeof(p), path, key);
    *out = def;
    if (v == NULL)
        return 0;
    if (!cJSON_IsBool(v))
        return bad(c, p, "expected true or false", NULL);
    *out = cJSON_IsTrue(v);
    return 0;
}

static int get_threshold(struct ctx *c, const cJSON *v, const char *path, double *out)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1))
        return bad(c, path, "expected a number in [0, 1]", NULL);
    *out = v->valuedouble;
    return 0;
}

static int parse_action(struct ctx *c, const char *s, const char *path, enum gf_action *out)
{
    static const char *const names[] = {"allow", "flag", "redact", "block"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum gf_action)i;
            return 0;
        }
    return bad(c, path, "unknown action '%s' (expected allow, flag, redact or block)", s);
}

// Collects a string or an array of strings into a NULL-terminated borrowed list.
static int string_list(struct ctx *c, const cJSON *v, const char *path, bool one_ok,
                       const char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (one_ok && cJSON_IsString(v)) {
        const char **l = gf_calloc(2, sizeof(*l));
        if (l == NULL)
            return oom(c);
        l[0] = v->valuestring;
        *out = l;
        *n = 1;
        return 0;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0)
        return bad(c, path, "expected a non-empty array of strings", NULL);
    size_t k = (size_t)cJSON_GetArraySize(v);
    const char **l = gf_calloc(k + 1, sizeof(*l));
    if (l == NULL)
        return oom(c);
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        if (!cJSON_IsString(e)) {
            gf_free(l);
            char p[160];
            idx(p, sizeof(p), path, "", i);
            return bad(c, p, "expected a string", NULL);
        }
        l[i] = e->valuestring;
    }
    *out = l;
    *n = k;
    return 0;
}

static bool valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.' || *s == ':'))
            return false;
    return true;
}

static double category_threshold(const struct gf_policy *p, const char *cat, double def)
{
    for (size_t i = 0; i < p->n_cats; i++)
        if (strcmp(p->cats[i].name, cat) == 0)
            return p->cats[i].threshold;
    return def;
}

static int add_clf_slot(struct ctx *c, struct rule *r)
{
    for (size_t i = 0; i < c->p->n_clfs; i++)
        if (c->p->clfs[i] == r->clf) {
            r->clf_slot = (int)i;
            return 0;
        }
    const struct gf_classifier **v =
        gf_realloc(c->p->clfs, (c->p->n_clfs + 1) * sizeof(*v));
    if (v == NULL)
        return oom(c);
    c->p->clfs = v;
    r->clf_slot = (int)c->p->n_clfs;
    v[c->p->n_clfs++] = r->clf;
    return 0;
}

static int build_detector(struct ctx *c, const cJSON *o, const char *path, const char *det,
                          struct rule *r)
{
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(o, "pattern");
    const cJSON *pats = cJSON_GetObjectItemCaseSensitive(o, "patterns");
    const cJSON *kw = cJSON_GetObjectItemCaseSensitive(o, "keywords");
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(o, "types");
    const cJSON *thr = cJSON_GetObjectItemCaseSensitive(o, "threshold");
    bool regex = strcmp(det, "regex") == 0, keywords = strcmp(det, "keywords") == 0;
    bool pii = strcmp(det, "pii") == 0, spam = strcmp(det, "spam") == 0;
    char p[160];
    if (!regex && !keywords && !pii && !spam) {
        sub(p, sizeof(p), path, "detector");
        return bad(c, p, "unknown detector '%s' (expected regex, keywords, pii or spam)", det);
    }
    // Keys that belong to another detector are mistakes, not options to ignore.
    struct {
        const cJSON *v;
        const char *key;
        bool ok;
    } only[] = {{pat, "pattern", regex}, {pats, "patterns", regex}, {kw, "keywords", keywords},
                {types, "types", pii}, {thr, "threshold", spam},
                {cJSON_GetObjectItemCaseSensitive(o, "ignore_case"), "ignore_case", regex || keywords},
                {cJSON_GetObjectItemCaseSensitive(o, "canonical"), "canonical", regex || keywords}};
    for (size_t i = 0; i < GF_ARRAY_LEN(only); i++) {
        if (only[i].v && !only[i].ok) {
            sub(p, sizeof(p), path, only[i].key);
            return bad(c, p, "not valid for detector '%s'", det);
        }
    }
    bool icase, canon;
    int rc = get_bool(c, o, "ignore_case", path, keywords, &icase);
    if (rc == 0)
        rc = get_bool(c, o, "canonical", path, true, &canon);
    if (rc != 0)
        return rc;
    unsigned flags = (icase ? GF_RX_CASELESS : 0) | (canon ? 0 : GF_RX_ORIGINAL_ONLY);
    const char *type = r->label ? r->label : r->id;
    struct gf_err derr = {0};
    if (regex) {
        if ((pat == NULL) == (pats == NULL)) {
            sub(p, sizeof(p), path, "pattern");
            return bad(c, p, "give exactly one of \"pattern\" or \"patterns\"", NULL);
        }
        const char **list;
        size_t n;
        sub(p, sizeof(p), path, pat ? "pattern" : "patterns");
        if (pat && !cJSON_IsString(pat))
            return bad(c, p, "expected a string", NULL);
        rc = string_list(c, pat ? pat : pats, p, pat != NULL, &list, &n);
        if (rc != 0)
            return rc;
        size_t which = 0;
        rc = gf_regex_new(type, list, n, flags, &r->det, &which, &derr);
        gf_free(list);
        if (rc == GF_EINVAL && pats)
            idx(p, sizeof(p), path, "patterns", (int)which);
    } else if (keywords) {
        const char **list;
        size_t n;
        sub(p, sizeof(p), path, "keywords");
        if (kw == NULL)
            return bad(c, p, "missing (expected a non-empty array of strings)", NULL);
        rc = string_list(c, kw, p, false, &list, &n);
        if (rc != 0)
            return rc;
        size_t which = 0;
        rc = gf_keywords_new(type, list, n, flags, &r->det, &which, &derr);
        gf_free(list);
        if (rc == GF_EINVAL)
            idx(p, sizeof(p), path, "keywords", (int)which);
    } else if (pii) {
        uint32_t mask = 0;
        if (types) {
            sub(p, sizeof(p), path, "types");
            const char **list;
            size_t n;
            rc = string_list(c, types, p, false, &list, &n);
            if (rc != 0)
                return rc;
            for (size_t i = 0; i < n && rc == 0; i++) {
                if (gf_pii_type_parse(list[i], &mask) != 0) {
                    idx(p, sizeof(p), path, "types", (int)i);
                    rc = bad(c, p, "unknown type '%s' (see docs/policy.md for the list)",
                             list[i]);
                }
            }
            gf_free(list);
            if (rc != 0)
                return rc;
        }
        rc = gf_pii_new(mask, &r->det, &derr);
    } else {
        r->whole_text = true;
        r->threshold = 0.5;
        if (thr) {
            sub(p, sizeof(p), path, "threshold");
            rc = get_threshold(c, thr, p, &r->threshold);
            if (rc != 0)
                return rc;
        }
        rc = gf_spam_new(&r->det, &derr);
    }
    if (rc == GF_ENOMEM)
        return oom(c);
    if (rc != 0)
        return gf_err_set(c->err, rc, "%s: %s", p, derr.msg);
    return 0;
}

static int build_classifier(struct ctx *c, const cJSON *o, const char *path, const char *cat,
                            struct rule *r, bool optional)
{
    static const char *const wrong[] = {"pattern", "patterns", "keywords", "types",
                                        "ignore_case", "canonical"};
    char p[160];
    for (size_t i = 0; i < GF_ARRAY_LEN(wrong); i++) {
        if (cJSON_GetObjectItemCaseSensitive(o, wrong[i])) {
            sub(p, sizeof(p), path, wrong[i]);
            return bad(c, p, "not valid for a classifier rule", NULL);
        }
    }
    r->whole_text = true;
    r->threshold = category_threshold(c->p, cat, 0.5);
    const cJSON *thr = cJSON_GetObjectItemCaseSensitive(o, "threshold");
    if (thr) {
        sub(p, sizeof(p), path, "threshold");
        int rc = get_threshold(c, thr, p, &r->threshold);
        if (rc != 0)
            return rc;
    }
    if (!gf_clf_registry_find(c->reg, cat, &r->clf, &r->clf_index)) {
        sub(p, sizeof(p), path, "classifier");
        if (!optional)
            return bad(c, p, "classifier '%s' is not loaded (add \"optional\": true to skip "
                             "the rule when it is not)", cat);
        r->skipped = true;
        int rc = gf_buf_printf(&c->warn, "%s: classifier '%s' is not loaded; rule '%s' skipped\n",
                               path, cat, r->id);
        return rc == 0 ? 0 : oom(c);
    }
    r->category = r->clf->categories[r->clf_index];
    return add_clf_slot(c, r);
}

static int parse_rule(struct ctx *c, const cJSON *o, const char *path, struct rule **out)
{
    static const char *const keys[] = {"id", "description", "stage", "action", "detector",
                                       "classifier", "pattern", "patterns", "keywords", "types",
                                       "ignore_case", "canonical", "threshold", "optional",
                                       "message", "label", NULL};
    *out = NULL;
    if (!cJSON_IsObject(o))
        return bad(c, path, "expected an object", NULL);
    int rc = check_keys(c, o, path, keys);
    if (rc != 0)
        return rc;
    const char *id, *stage, *action, *det, *clf, *msg, *label, *desc;
    bool optional;
    if ((rc = get_string(c, o, "id", path, true, &id)) || (rc = get_string(c, o, "stage", path,
        false, &stage)) || (rc = get_string(c, o, "action", path, true, &action)) ||
        (rc = get_string(c, o, "detector", path, false, &det)) ||
        (rc = get_string(c, o, "classifier", path, false, &clf)) ||
        (rc = get_string(c, o, "message", path, false, &msg)) ||
        (rc = get_string(c, o, "label", path, false, &label)) ||
        (rc = get_string(c, o, "description", path, false, &desc)) ||
        (rc = get_bool(c, o, "optional", path, false, &optional)))
        return rc;
    char p[160];
    if (!valid_id(id)) {
        sub(p, sizeof(p), path, "id");
        return bad(c, p, "'%s' is not an id (1-64 of A-Z a-z 0-9 - _ . :)", id);
    }
    if (label && !valid_id(label)) {
        sub(p, sizeof(p), path, "label");
        return bad(c, p, "'%s' is not a label (1-64 of A-Z a-z 0-9 - _ . :)", label);
    }
    struct rule *r = gf_calloc(1, sizeof(*r));
    if (r == NULL)
        return oom(c);
    r->clf_slot = -1;
    r->stage = GF_STAGE_BOTH;
    r->id = gf_strdup(id);
    r->message = msg ? gf_strdup(msg) : NULL;
    r->label = label ? gf_strdup(label) : NULL;
    if (r->id == NULL || (msg && r->message == NULL) || (label && r->label == NULL)) {
        rc = oom(c);
        goto fail;
    }
    if (stage && gf_stage_parse(stage, true, &r->stage) != 0) {
        sub(p, sizeof(p), path, "stage");
        rc = bad(c, p, "unknown stage '%s' (expected input, output or both)", stage);
        goto fail;
    }
    sub(p, sizeof(p), path, "action");
    if ((rc = parse_action(c, action, p, &r->action)) != 0)
        goto fail;
    if ((det == NULL) == (clf == NULL)) {
        rc = bad(c, path, "give exactly one of \"detector\" or \"classifier\"", NULL);
        goto fail;
    }
    if (det && optional) {
        sub(p, sizeof(p), path, "optional");
        rc = bad(c, p, "only classifier rules can be optional", NULL);
        goto fail;
    }
    rc = det ? build_detector(c, o, path, det, r) : build_classifier(c, o, path, clf, r, optional);
    if (rc != 0)
        goto fail;
    *out = r;
    return 0;
fail:
    gf_policy_free_rule(r);
    return rc;
}

static int keep_rule(struct ctx *c, struct rule *r)
{
    struct rule **v = gf_realloc(c->p->rules, (c->p->n_rules + 1) * sizeof(*v));
    if (v == NULL) {
        gf_policy_free_rule(r);
        return oom(c);
    }
    c->p->rules = v;
    v[c->p->n_rules++] = r;
    return 0;
}

// Parses an array of rules into the policy, appending pointers to *list in order.
static int parse_rules(struct ctx *c, const cJSON *arr, const char *path, struct rule ***list,
                       size_t *n)
{
    char p[160];
    sub(p, sizeof(p), path, "rules");
    if (!cJSON_IsArray(arr))
        return bad(c, p, "expected an array", NULL);
    size_t k = (size_t)cJSON_GetArraySize(arr);
    *list = gf_calloc(k + 1, sizeof(**list));
    if (*list == NULL)
        return oom(c);
    int i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        idx(p, sizeof(p), path, "rules", i);
        struct rule *r;
        int rc = parse_rule(c, e, p, &r);
        if (rc == 0)
            rc = keep_rule(c, r);
        if (rc != 0)
            return rc;
        for (size_t j = 0; j < *n; j++) {
            if (strcmp((*list)[j]->id, r->id) == 0) {
                char q[160];
                sub(q, sizeof(q), p, "id");
                return bad(c, q, "duplicate rule id '%s'", r->id);
            }
        }
        (*list)[(*n)++] = r;
    }
    return 0;
}

static int parse_categories(struct ctx *c, const cJSON *o)
{
    if (!cJSON_IsObject(o))
        return bad(c, "categories", "expected an object", NULL);
    size_t k = (size_t)cJSON_GetArraySize(o);
    c->p->cats = gf_calloc(k + 1, sizeof(*c->p->cats));
    if (c->p->cats == NULL)
        return oom(c);
    for (const cJSON *e = o->child; e; e = e->next) {
        char p[160];
        sub(p, sizeof(p), "categories", e->string);
        const cJSON *t = e;
        if (cJSON_IsObject(e)) {
            static const char *const keys[] = {"threshold", "description", NULL};
            int rc = check_keys(c, e, p, keys);
            if (rc != 0)
                return rc;
            t = cJSON_GetObjectItemCaseSensitive(e, "threshold");
            char q[160];
            sub(q, sizeof(q), p, "threshold");
            memcpy(p, q, sizeof(p));
        }
        struct category *cat = &c->p->cats[c->p->n_cats];
        int rc = get_threshold(c, t, p, &cat->threshold);
        if (rc != 0)
            return rc;
        for (size_t j = 0; j < c->p->n_cats; j++)
            if (strcmp(c->p->cats[j].name, e->string) == 0)
                return bad(c, p, "category given twice", NULL);
        cat->name = gf_strdup(e->string);
        if (cat->name == NULL)
            return oom(c);
        c->p->n_cats++;
    }
    return 0;
}

static int parse_abuse(struct ctx *c, const cJSON *o)
{
    static const char *const keys[] = {"blocks", "window", NULL};
    if (!cJSON_IsObject(o))
        return bad(c, "abuse", "expected an object", NULL);
    int rc = check_keys(c, o, "abuse", keys);
    if (rc != 0)
        return rc;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "blocks");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(o, "window");
    if (!cJSON_IsNumber(b) || b->valuedouble < 0 || b->valuedouble > 1e6 ||
        b->valuedouble != (double)(int)b->valuedouble)
        return bad(c, "abuse.blocks", "expected an integer in [0, 1000000]", NULL);
    c->p->abuse_blocks = (int)b->valuedouble;
    c->p->abuse_window_ms = 3600000;
    if (cJSON_IsString(w)) {
        if (gf_parse_duration_ms(w->valuestring, &c->p->abuse_window_ms) != 0 ||
            c->p->abuse_window_ms <= 0)
            return bad(c, "abuse.window", "'%s' is not a duration (e.g. 10m, 1h)", w->valuestring);
    } else if (cJSON_IsNumber(w) && w->valuedouble > 0 && w->valuedouble <= 365 * 86400.0) {
        c->p->abuse_window_ms = (int64_t)(w->valuedouble * 1000);
    } else if (w) {
        return bad(c, "abuse.window", "expected a duration such as \"10m\" or seconds", NULL);
    }
    return 0;
}

static int parse_streaming(struct ctx *c, const cJSON *o)
{
    static const char *const keys[] = {"holdback_bytes", NULL};
    if (!cJSON_IsObject(o))
        return bad(c, "streaming", "expected an object", NULL);
    int rc = check_keys(c, o, "streaming", keys);
    if (rc != 0)
        return rc;
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "holdback_bytes");
    if (h == NULL)
        return 0;
    if (!cJSON_IsNumber(h) || h->valuedouble < 16 || h->valuedouble > 65536 ||
        h->valuedouble != (double)(int)h->valuedouble)
        return bad(c, "streaming.holdback_bytes", "expected an integer in [16, 65536]", NULL);
    c->p->holdback = (size_t)h->valuedouble;
    return 0;
}

/* ---- groups --------------------------------------------------------------------------------- */

struct gspec {
    const cJSON *json;
    const char *name;
    const char *extends;  // NULL: "default"
    bool override;
    struct rule **rules;  // the group's own rules
    size_t n_rules;
    const char **remove;
    size_t n_remove;
    int state;            // 0 new, 1 resolving, 2 done
    int index;            // into p->groups
};

static int find_rule(struct rule **list, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i]->id, id) == 0)
            return (int)i;
    return -1;
}

static int resolve(struct ctx *c, struct gspec *specs, size_t n, struct gspec *g)
{
    char path[160];
    FMT(path, sizeof(path), "groups.%.100s", g->name);
    if (g->state == 2)
        return 0;
    if (g->state == 1)
        return bad(c, path, "groups extend each other in a cycle", NULL);
    g->state = 1;
    const struct group *parent = &c->p->groups[0];
    if (g->extends && strcmp(g->extends, "default") != 0) {
        struct gspec *ps = NULL;
        for (size_t i = 0; i < n; i++)
            if (strcmp(specs[i].name, g->extends) == 0)
                ps = &specs[i];
        char p[200];
        sub(p, sizeof(p), path, "extends");
        if (ps == NULL)
            return bad(c, p, "unknown group '%s'", g->extends);
        int rc = resolve(c, specs, n, ps);
        if (rc != 0)
            return rc;
        parent = &c->p->groups[ps->index];
    }
    struct group *grp = &c->p->groups[g->index];
    const cJSON *o = g->json;
    const char *def, *refusal;
    int rc = get_string(c, o, "default", path, false, &def);
    if (rc == 0)
        rc = get_string(c, o, "refusal", path, false, &refusal);
    if (rc != 0)
        return rc;
    grp->def = parent->def;
    if (def) {
        char p[200];
        sub(p, sizeof(p), path, "default");
        if ((rc = parse_action(c, def, p, &grp->def)) != 0)
            return rc;
    }
    grp->refusal = gf_strdup(refusal ? refusal : parent->refusal);
    size_t cap = (g->override ? 0 : parent->n_rules) + g->n_rules + 1;
    grp->rules = gf_calloc(cap, sizeof(*grp->rules));
    if (grp->refusal == NULL || grp->rules == NULL)
        return oom(c);
    if (!g->override) {
        memcpy(grp->rules, parent->rules, parent->n_rules * sizeof(*grp->rules));
        grp->n_rules = parent->n_rules;
    }
    for (size_t i = 0; i < g->n_rules; i++) {
        int at = find_rule(grp->rules, grp->n_rules, g->rules[i]->id);
        if (at >= 0)
            grp->rules[at] = g->rules[i];  // same id: replaces the inherited rule in place
        else
            grp->rules[grp->n_rules++] = g->rules[i];
    }
    for (size_t i = 0; i < g->n_remove; i++) {
        int at = find_rule(grp->rules, grp->n_rules, g->remove[i]);
        if (at < 0) {
            char p[200];
            FMT(p, sizeof(p), "%s.remove[%zu]", path, i);
            return bad(c, p, "no inherited rule '%s'", g->remove[i]);
        }
        memmove(grp->rules + at, grp->rules + at + 1,
                (grp->n_rules - (size_t)at - 1) * sizeof(*grp->rules));
        grp->n_rules--;
    }
    g->state = 2;
    return 0;
}

static int parse_groups(struct ctx *c, const cJSON *o)
{
    if (!cJSON_IsObject(o))
        return bad(c, "groups", "expected an object", NULL);
    size_t n = (size_t)cJSON_GetArraySize(o);
    struct gspec *specs = gf_calloc(n + 1, sizeof(*specs));
    struct group *groups = gf_realloc(c->p->groups, (n + 1) * sizeof(*groups));
    if (groups)
        c->p->groups = groups;
    if (specs == NULL || groups == NULL) {
        gf_free(specs);
        return oom(c);
    }
    memset(groups + 1, 0, n * sizeof(*groups));
    int rc = 0;
    size_t k = 0;
    for (const cJSON *e = o->child; e && rc == 0; e = e->next, k++) {
        static const char *const keys[] = {"extends", "override", "rules", "remove", "default",
                                           "refusal", "description", NULL};
        char path[160];
        FMT(path, sizeof(path), "groups.%.100s", e->string);
        struct gspec *g = &specs[k];
        g->json = e;
        g->name = e->string;
        g->index = (int)k + 1;
        if (!valid_id(e->string) || strcmp(e->string, "default") == 0) {
            rc = bad(c, path, "'%s' cannot name a group", e->string);
            break;
        }
        for (size_t j = 0; j < k && rc == 0; j++)
            if (strcmp(specs[j].name, e->string) == 0)
                rc = bad(c, path, "group given twice", NULL);
        if (rc == 0 && !cJSON_IsObject(e))
            rc = bad(c, path, "expected an object", NULL);
        if (rc == 0)
            rc = check_keys(c, e, path, keys);
        if (rc == 0)
            rc = get_string(c, e, "extends", path, false, &g->extends);
        if (rc == 0)
            rc = get_bool(c, e, "override", path, false, &g->override);
        c->p->groups[k + 1].name = gf_strdup(e->string);
        c->p->n_groups = k + 2;
        if (c->p->groups[k + 1].name == NULL && rc == 0)
            rc = oom(c);
        const cJSON *rules = cJSON_GetObjectItemCaseSensitive(e, "rules");
        if (rc == 0 && rules)
            rc = parse_rules(c, rules, path, &g->rules, &g->n_rules);
        const cJSON *rm = cJSON_GetObjectItemCaseSensitive(e, "remove");
        if (rc == 0 && rm) {
            char p[200];
            sub(p, sizeof(p), path, "remove");
            rc = string_list(c, rm, p, false, &g->remove, &g->n_remove);
        }
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = resolve(c, specs, n, &specs[i]);
    for (size_t i = 0; i < n; i++) {
        gf_free(specs[i].rules);
        gf_free(specs[i].remove);
    }
    gf_free(specs);
    return rc;
}

/* ---- the whole file ------------------------------------------------------------------------- */

static int parse_top(struct ctx *c, const cJSON *root)
{
    static const char *const keys[] = {"version", "name", "description", "default", "refusal",
                                       "categories", "rules", "groups", "abuse", "streaming",
                                       NULL};
    if (!cJSON_IsObject(root))
        return bad(c, "(top)", "expected a JSON object", NULL);
    int rc = check_keys(c, root, "", keys);
    if (rc != 0)
        return rc;
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    if (ver == NULL)
        return bad(c, "version", "missing (expected 1)", NULL);
    if (!cJSON_IsNumber(ver) || ver->valuedouble != 1)
        return bad(c, "version", "unsupported (expected 1)", NULL);
    const char *def, *refusal, *name, *desc;
    if ((rc = get_string(c, root, "default", "", false, &def)) ||
        (rc = get_string(c, root, "refusal", "", false, &refusal)) ||
        (rc = get_string(c, root, "name", "", false, &name)) ||
        (rc = get_string(c, root, "description", "", false, &desc)))
        return rc;
    c->p->groups = gf_calloc(1, sizeof(*c->p->groups));
    if (c->p->groups == NULL)
        return oom(c);
    c->p->n_groups = 1;
    struct group *base = &c->p->groups[0];
    base->def = GF_ACTION_ALLOW;
    if (def && (rc = parse_action(c, def, "default", &base->def)) != 0)
        return rc;
    base->name = gf_strdup("default");
    base->refusal = gf_strdup(refusal ? refusal : GF_POLICY_DEFAULT_REFUSAL);
    if (base->name == NULL || base->refusal == NULL)
        return oom(c);
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "categories")) && (rc = parse_categories(c, v)))
        return rc;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "abuse")) && (rc = parse_abuse(c, v)))
        return rc;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "streaming")) && (rc = parse_streaming(c, v)))
        return rc;
    v = cJSON_GetObjectItemCaseSensitive(root, "rules");
    if (v == NULL) {
        base->rules = gf_calloc(1, sizeof(*base->rules));
        if (base->rules == NULL)
            return oom(c);
    } else if ((rc = parse_rules(c, v, "", &base->rules, &base->n_rules)) != 0) {
        return rc;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "groups")) && (rc = parse_groups(c, v)))
        return rc;
    return 0;
}

// Each stage scores through its classifiers narrowed to the categories its rules read, in any
// group: a stage pays for no output it never reads (a model's spam head, when no rule of the
// stage is on spam). Scores of the categories read are the same bits either way.
static int narrow_classifiers(struct ctx *c)
{
    struct gf_policy *p = c->p;
    if (p->n_clfs == 0)
        return 0;
    p->clf_in = gf_calloc(p->n_clfs, sizeof(*p->clf_in));
    p->clf_out = gf_calloc(p->n_clfs, sizeof(*p->clf_out));
    if (p->clf_in == NULL || p->clf_out == NULL)
        return oom(c);
    for (size_t i = 0; i < p->n_clfs; i++) {
        const struct gf_classifier *clf = p->clfs[i];
        bool *want = gf_calloc(clf->n_categories ? clf->n_categories : 1, sizeof(bool));
        if (want == NULL)
            return oom(c);
        for (int in = 1; in >= 0; in--) {
            enum gf_stage stage = in ? GF_STAGE_INPUT : GF_STAGE_OUTPUT;
            memset(want, 0, clf->n_categories * sizeof(bool));
            for (size_t k = 0; k < p->n_rules; k++) {
                const struct rule *r = p->rules[k];
                if (r->clf_slot == (int)i && !r->skipped && (r->stage & stage))
                    want[r->clf_index] = true;
            }
            struct gf_classifier *n = gf_classifier_narrow(clf, want);
            if (n == NULL) {
                gf_free(want);
                return oom(c);
            }
            (in ? p->clf_in : p->clf_out)[i] = n;
        }
        gf_free(want);
    }
    return 0;
}

int gf_policy_parse(const char *json, size_t len, const char *name,
                    struct gf_clf_registry *registry, struct gf_policy **out, struct gf_err *err)
{
    *out = NULL;
    struct gf_err local = {0};
    struct ctx c = {NULL, registry, &local, {0}};
    gf_buf_init(&c.warn, 1 << 16);
    cJSON *root = NULL;
    int rc = 0;
    c.p = gf_calloc(1, sizeof(*c.p));
    if (c.p == NULL) {
        rc = oom(&c);
        goto fail;
    }
    atomic_init(&c.p->refs, 1);
    c.p->holdback = GF_POLICY_DEFAULT_HOLDBACK;
    uint8_t digest[GF_SHA256_LEN];
    gf_sha256(json, len, digest);
    gf_hex(digest, GF_SHA256_LEN, c.p->version);
    c.p->source = gf_strdup(name);
    if (c.p->source == NULL) {
        rc = oom(&c);
        goto fail;
    }
    c.p->reg = gf_clf_registry_ref(registry);
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (root == NULL) {
        // cJSON does not tell a failed allocation from a syntax error: a second parse that
        // succeeds shows the first failure was memory.
        root = cJSON_ParseWithLengthOpts(json, len, NULL, false);
        if (root != NULL) {
            rc = oom(&c);
            goto fail;
        }
        if (end == NULL || (size_t)(end - json) >= len) {  // cJSON may have run out of memory
            size_t line = 1;
            for (size_t i = 0; i < len; i++)
                line += json[i] == '\n';
            rc = gf_err_set(&local, GF_EFORMAT, "invalid JSON (cut short?) at line %zu", line);
        } else {
            size_t line = 1;
            for (const char *q = json; q < end; q++)
                line += *q == '\n';
            rc = gf_err_set(&local, GF_EFORMAT, "invalid JSON at line %zu, byte %zu", line,
                            (size_t)(end - json));
        }
        goto fail;
    }
    if ((rc = parse_top(&c, root)) != 0 || (rc = narrow_classifiers(&c)) != 0)
        goto fail;
    c.p->warnings = gf_buf_steal(&c.warn);
    if (c.p->warnings == NULL) {
        rc = oom(&c);
        goto fail;
    }
    cJSON_Delete(root);
    *out = c.p;
    return 0;
fail:
    cJSON_Delete(root);
    gf_buf_cleanup(&c.warn);
    gf_policy_unref(c.p);
    if (local.code == 0)
        gf_err_set(&local, rc, "%s", gf_strerror(rc));
    gf_err_prefix(&local, name);
    gf_err_set(err, local.code, "%s", local.msg);
    return local.code;
}

int gf_policy_load(const char *path, struct gf_clf_registry *registry, struct gf_policy **out,
                   struct gf_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return gf_err_set(err, GF_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct gf_buf b;
    gf_buf_init(&b, GF_POLICY_MAX_FILE);
    char chunk[8192];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = gf_buf_append(&b, chunk, n);
    bool ioerr = ferror(f);
    fclose(f);
    if (rc == GF_ETOOBIG)
        rc = gf_err_set(err, rc, "%s: larger than %u bytes", path, GF_POLICY_MAX_FILE);
    else if (rc != 0)
        rc = gf_err_set(err, rc, "%s: out of memory reading it", path);
    else if (ioerr)
        rc = gf_err_set(err, GF_EIO, "%s: read error", path);
    if (rc == 0)
        rc = gf_policy_parse(b.data ? b.data : "", b.len, path, registry, out, err);
    gf_buf_cleanup(&b);
    return rc;
}
