/* args.c — see args.h.
 * Includes: cli/args.h, libc. */
#include "core/args.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Name equality treating '_' and '-' alike. */
static int name_eq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen) return 0;
    for (size_t i = 0; i < alen; i++) {
        char x = a[i] == '_' ? '-' : a[i], y = b[i] == '_' ? '-' : b[i];
        if (x != y) return 0;
    }
    return 1;
}

static int opt_matches(const dc_opt *o, const char *name, size_t len)
{
    if (name_eq(name, len, o->name)) return 1;
    if (!o->aliases) return 0;
    const char *p = o->aliases;
    while (*p) {
        const char *sp = strchr(p, ' ');
        size_t n = sp ? (size_t)(sp - p) : strlen(p);
        char buf[64];
        if (n < sizeof buf) {
            memcpy(buf, p, n);
            buf[n] = '\0';
            if (name_eq(name, len, buf)) return 1;
        }
        if (!sp) break;
        p = sp + 1;
    }
    return 0;
}

static int fail(dc_args *a, const char *prog, const char *fmt, ...)
    DC_PRINTF(3, 4);
static int fail(dc_args *a, const char *prog, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(a->err, sizeof a->err, "%s: %s", prog, msg);
    return DC_ARGS_ERROR;
}

static void bound_str(char *buf, size_t n, const dc_opt *o)
{
    if (o->min < o->max) {
        if (o->max >= 1e9) /* effectively unbounded above */
            snprintf(buf, n, "at least %.10g", o->min);
        else
            snprintf(buf, n, "between %.10g and %.10g", o->min, o->max);
    } else {
        buf[0] = '\0';
    }
}

static int set_value(dc_args *a, const char *prog, const dc_opt *o,
                     const char *v)
{
    char flag[80], bounds[96];
    snprintf(flag, sizeof flag, "--%s", o->name);
    bound_str(bounds, sizeof bounds, o);
    char *end;
    switch (o->kind) {
    case DC_OPT_INT:
    case DC_OPT_I64: {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (*v == '\0' || *end != '\0' || (*v == ' ' || *v == '\t'))
            return fail(a, prog, "%s: '%s' is not an integer", flag, v);
        if (errno == ERANGE || (o->kind == DC_OPT_INT && (x > INT_MAX || x < INT_MIN)))
            return fail(a, prog, "%s: %s is too large", flag, v);
        if (o->min < o->max && ((double)x < o->min || (double)x > o->max))
            return fail(a, prog, "%s: %s is out of range (must be %s)", flag, v, bounds);
        if (o->kind == DC_OPT_INT) *(int *)o->dest = (int)x;
        else *(int64_t *)o->dest = (int64_t)x;
        return DC_ARGS_OK;
    }
    case DC_OPT_DOUBLE: {
        errno = 0;
        double x = strtod(v, &end);
        if (*v == '\0' || *end != '\0' || *v == ' ' || *v == '\t')
            return fail(a, prog, "%s: '%s' is not a number", flag, v);
        if (!isfinite(x) || errno == ERANGE)
            return fail(a, prog, "%s: '%s' is not a finite number", flag, v);
        if (o->min < o->max && (x < o->min || x > o->max))
            return fail(a, prog, "%s: %s is out of range (must be %s)", flag, v, bounds);
        *(double *)o->dest = x;
        return DC_ARGS_OK;
    }
    case DC_OPT_STRING:
        if (*v == '\0') return fail(a, prog, "%s: empty value", flag);
        *(const char **)o->dest = v;
        return DC_ARGS_OK;
    case DC_OPT_CHOICE: {
        const char *p = o->choices;
        size_t n = strlen(v);
        while (p && *p) {
            const char *bar = strchr(p, '|');
            size_t len = bar ? (size_t)(bar - p) : strlen(p);
            if (len == n && memcmp(p, v, n) == 0) {
                *(const char **)o->dest = v;
                return DC_ARGS_OK;
            }
            p = bar ? bar + 1 : NULL;
        }
        return fail(a, prog, "%s: '%s' is not one of %s", flag, v, o->choices);
    }
    case DC_OPT_FLAG:
        *(int *)o->dest = 1;
        return DC_ARGS_OK;
    }
    return DC_ARGS_ERROR;
}

int dc_args_parse(dc_args *a, const char *prog, const dc_opt *opts, int nopts,
                  int max_pos, int argc, char **argv)
{
    DC_ASSERT(nopts <= DC_ARGS_MAX_OPTS && max_pos <= 16);
    memset(a, 0, sizeof *a);
    int only_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (!only_pos && (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0))
            return DC_ARGS_HELP;
        if (!only_pos && strcmp(arg, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (only_pos || arg[0] != '-' || arg[1] == '\0') {
            if (a->npos >= max_pos)
                return fail(a, prog, "unexpected argument '%s'", arg);
            a->pos[a->npos++] = arg;
            continue;
        }
        if (arg[1] != '-')
            return fail(a, prog, "unknown option '%s' (options are spelled --name)", arg);
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int k = -1;
        for (int j = 0; j < nopts && k < 0; j++)
            if (opt_matches(&opts[j], name, len)) k = j;
        if (k < 0) {
            char shown[80];
            snprintf(shown, sizeof shown, "--%.*s", (int)(len < 60 ? len : 60), name);
            return fail(a, prog, "unknown option '%s' (see --help)", shown);
        }
        const dc_opt *o = &opts[k];
        const char *value;
        if (o->kind == DC_OPT_FLAG) {
            if (eq) return fail(a, prog, "--%s takes no value", o->name);
            value = "1";
        } else if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc) return fail(a, prog, "--%s needs a value", o->name);
            value = argv[++i];
        }
        int r = set_value(a, prog, o, value);
        if (r) return r;
        a->seen[k] = 1;
    }
    for (int j = 0; j < nopts; j++)
        if (opts[j].required && !a->seen[j])
            return fail(a, prog, "missing required option --%s", opts[j].name);
    return DC_ARGS_OK;
}

void dc_args_usage(FILE *f, const char *prog, const char *synopsis,
                   const char *description, const dc_opt *opts, int nopts)
{
    fprintf(f, "usage: %s %s\n", prog, synopsis);
    if (description) fprintf(f, "\n%s\n", description);
    if (nopts) fprintf(f, "\noptions:\n");
    for (int i = 0; i < nopts; i++) {
        const dc_opt *o = &opts[i];
        char left[96], def[96] = "";
        if (o->kind == DC_OPT_FLAG)
            snprintf(left, sizeof left, "--%s", o->name);
        else
            snprintf(left, sizeof left, "--%s %s", o->name, o->metavar ? o->metavar : "X");
        switch (o->kind) {
        case DC_OPT_INT: snprintf(def, sizeof def, " (default %d)", *(int *)o->dest); break;
        case DC_OPT_I64: snprintf(def, sizeof def, " (default %lld)", (long long)*(int64_t *)o->dest); break;
        case DC_OPT_DOUBLE: snprintf(def, sizeof def, " (default %g)", *(double *)o->dest); break;
        case DC_OPT_STRING:
        case DC_OPT_CHOICE:
            if (*(const char **)o->dest) snprintf(def, sizeof def, " (default %s)", *(const char **)o->dest);
            break;
        case DC_OPT_FLAG: break;
        }
        fprintf(f, "  %-26s %s%s\n", left, o->help ? o->help : "", o->required ? " (required)" : def);
        if (o->aliases) {
            char also[160];
            size_t off = 0;
            for (const char *p = o->aliases; *p && off + 4 < sizeof also;) {
                size_t len = strcspn(p, " ");
                off += (size_t)snprintf(also + off, sizeof also - off, "%s--%.*s", off ? ", " : "", (int)len, p);
                p += len;
                while (*p == ' ') p++;
            }
            fprintf(f, "  %-26s (also %s)\n", "", also);
        }
    }
    fprintf(f, "  %-26s %s\n", "-h, --help", "show this help");
}
