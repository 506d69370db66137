/* loader.c — a small pool of worker threads that fills batches ahead of
 * the step loop: the caller submits a job (a slot and its rows) and later
 * waits for it; workers take rows from a shared counter and call the
 * caller's function for each. What a row holds is the caller's function of
 * (job, row) alone, so the result does not depend on the worker count or
 * on which worker ran what. POSIX threads; the workers start once and
 * sleep on a condition variable between jobs.
 * Includes: dc/data.h. */
#define _POSIX_C_SOURCE 200809L
#include "dc/data.h"

#include <pthread.h>
#include <string.h>

typedef struct {
    int64_t job;
    int nrows, next, done; /* rows handed out / finished         */
    int active;            /* submitted and not yet waited for    */
    dc_status status;
    char error[256];
} slot_state;

struct dc_loader {
    pthread_t *threads;
    int nworkers, nslots;
    dc_loader_fn fn;
    void *ctx;
    pthread_mutex_t mu;
    pthread_cond_t work, finished;
    slot_state *slots;
    int quit;
};

typedef struct {
    dc_loader *l;
    int id;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    dc_loader *l = a->l;
    int id = a->id;
    dc_free(a);
    pthread_mutex_lock(&l->mu);
    for (;;) {
        /* the oldest unfinished job first: slots are served in order */
        int pick = -1;
        for (int k = 0; k < l->nslots; k++) {
            slot_state *s = &l->slots[k];
            if (s->active && s->next < s->nrows && (pick < 0 || s->job < l->slots[pick].job)) pick = k;
        }
        if (pick < 0) {
            if (l->quit) break;
            pthread_cond_wait(&l->work, &l->mu);
            continue;
        }
        slot_state *s = &l->slots[pick];
        int row = s->next++;
        int64_t job = s->job;
        pthread_mutex_unlock(&l->mu);
        dc_status st = l->fn(l->ctx, pick, job, row, id);
        pthread_mutex_lock(&l->mu);
        if (st != DC_OK && s->status == DC_OK) {
            s->status = st;
            snprintf(s->error, sizeof s->error, "%s", dc_last_error());
        }
        if (++s->done == s->nrows) pthread_cond_broadcast(&l->finished);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

dc_status dc_loader_start(dc_loader **out, int nworkers, int nslots, dc_loader_fn fn, void *ctx)
{
    DC_ASSERT(nworkers >= 1 && nslots >= 1 && fn);
    dc_loader *l = dc_xcalloc(1, sizeof *l);
    l->nworkers = 0;
    l->nslots = nslots;
    l->fn = fn;
    l->ctx = ctx;
    l->slots = dc_xcalloc((size_t)nslots, sizeof *l->slots);
    l->threads = dc_xcalloc((size_t)nworkers, sizeof *l->threads);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work, NULL);
    pthread_cond_init(&l->finished, NULL);
    for (int i = 0; i < nworkers; i++) {
        worker_arg *a = dc_xmalloc(sizeof *a);
        a->l = l;
        a->id = i;
        if (pthread_create(&l->threads[i], NULL, worker, a) != 0) {
            dc_free(a);
            dc_loader_stop(l);
            return dc_set_error(DC_STATUS_INTERNAL, "cannot start loader thread %d of %d", i + 1, nworkers);
        }
        l->nworkers++;
    }
    *out = l;
    return DC_OK;
}

void dc_loader_submit(dc_loader *l, int slot, int64_t job, int nrows)
{
    DC_ASSERT(slot >= 0 && slot < l->nslots && nrows >= 0);
    pthread_mutex_lock(&l->mu);
    slot_state *s = &l->slots[slot];
    DC_ASSERT(!s->active); /* waited for before reuse */
    memset(s, 0, sizeof *s);
    s->job = job;
    s->nrows = nrows;
    s->active = 1;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->mu);
}

dc_status dc_loader_wait(dc_loader *l, int slot)
{
    DC_ASSERT(slot >= 0 && slot < l->nslots);
    pthread_mutex_lock(&l->mu);
    slot_state *s = &l->slots[slot];
    if (!s->active) {
        pthread_mutex_unlock(&l->mu);
        return DC_OK;
    }
    while (s->done < s->nrows) pthread_cond_wait(&l->finished, &l->mu);
    s->active = 0;
    dc_status st = s->status;
    char msg[256];
    snprintf(msg, sizeof msg, "%s", s->error);
    pthread_mutex_unlock(&l->mu);
    return st ? dc_set_error(st, "%s", msg) : DC_OK;
}

void dc_loader_stop(dc_loader *l)
{
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    for (int k = 0; k < l->nslots; k++) /* nothing more is handed out */
        if (l->slots[k].active) l->slots[k].nrows = l->slots[k].next;
    l->quit = 1;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->nworkers; i++) pthread_join(l->threads[i], NULL);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->work);
    pthread_cond_destroy(&l->finished);
    dc_free(l->threads);
    dc_free(l->slots);
    dc_free(l);
}
