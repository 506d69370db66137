/* epoch.c — one training epoch (SPEC §5): uniform sampling over the
 * pseudo-labels of each super-class, batches made between steps or by
 * loader threads during them (the same rows either way: a function of the
 * seed, epoch and sample), the two-level step and SGD, per-epoch
 * statistics; and the stop a signal asks for, agreed by every rank.
 * Includes: train/run.h (dc/train.h, dc/cluster.h, dc/comm.h, dc/io.h). */
#define _POSIX_C_SOURCE 200809L
#include "train/run.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* The caller's stop request: nonzero (a signal number) stops the run. */
static int stop_requested(const dc_train_config *c) { return c->stop ? atomic_load(c->stop) : 0; }

/* Whether any rank was asked to stop: all of them must stop at the same
 * step, or the others would wait for it forever. Returns the signal. */
int dc_run_stop_agreed(const dc_train_config *c)
{
    int64_t v = stop_requested(c);
    if (c->comm && dc_comm_size(c->comm) > 1) {
        int64_t all[2] = {v, v != 0};
        if (dc_comm_allreduce_i64(c->comm, all, 2) != DC_OK) return 0;
        v = all[1] ? (v ? v : 15) : 0;
    }
    return (int)v;
}

/* SPEC §5 sampling for super-class s: epoch_size images drawn from its
 * super-cluster, the same number per non-empty sub-cluster (with
 * replacement only for sub-clusters too small), shuffled; as the original's
 * DistUnifTargSampler. Entries encode image·k_sub + sub-cluster. */
static void sample_epoch(run_state *r, int epoch, int s)
{
    int c = r->c->rotnet ? s / 4 : s;
    dc_sample_uniform(r->lists[s], r->c->epoch_size, r->members, r->mstart + (size_t)c * r->k_sub, r->k_sub, r->n,
                      (uint64_t)r->c->seed, (uint32_t)epoch, (uint32_t)s);
}

/* Row q of this rank's share of the global batch of (epoch, step), into
 * batch slot `slot`, with scratch t: a function of the seed, epoch and
 * sample only. Row q is sample (lo + q) % B of super-class (lo + q) / B. */
static dc_status fill_row(run_state *r, int slot, int epoch, int step, int q, int t)
{
    int B = r->B, C = r->C, size = r->size, rows = r->hi - r->lo;
    int64_t E = r->c->epoch_size;
    int g = r->lo + q, s = g / B, j = g % B;
    int32_t code = r->lists[s][(int64_t)step * B + j];
    int64_t img = code / r->k_sub;
    dc_rng rng;
    dc_rng_init(&rng, (uint64_t)r->c->seed, DC_RNG_STREAM_AUGMENT, (uint32_t)epoch,
                (uint32_t)((int64_t)s * E + (int64_t)step * B + j));
    dc_image im;
    if (dc_dataset_get(r->d, img, &r->bufs[t], &im) != DC_OK)
        return dc_set_error(DC_STATUS_FORMAT, "%s", dc_last_error());
    dc_transform_train_scale(r->batch + slot * r->slot_floats + (size_t)q * C * size * size, &im, size,
                             r->c->rotnet ? s % 4 : 0, &rng, r->tmp + (size_t)t * r->tmpn, r->c->crop_min_scale);
    r->tsup[(size_t)slot * rows + q] = s;
    r->tsub[(size_t)slot * rows + q] = code % r->k_sub;
    return DC_OK;
}

dc_status dc_run_loader_row(void *ctx, int slot, int64_t job, int row, int worker)
{
    run_state *r = ctx;
    return fill_row(r, slot, r->cur_epoch, (int)job, row, worker);
}

/* The batch of (epoch, step) into slot 0, on the OpenMP threads. */
static dc_status make_batch(run_state *r, int epoch, int step)
{
    dc_status st = DC_OK;
#pragma omp parallel for schedule(dynamic, 1)
    for (int q = 0; q < r->hi - r->lo; q++) {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        if (fill_row(r, 0, epoch, step, q, t) != DC_OK) {
#pragma omp critical(dc_batch_error)
            if (st == DC_OK) st = dc_set_error(DC_STATUS_FORMAT, "%s", dc_last_error());
        }
    }
    return st;
}

/* Waits for the loader's jobs in flight (their results are not used). */
void dc_run_drain_loader(run_state *r)
{
    if (!r->loader) return;
    dc_loader_wait(r->loader, 0);
    dc_loader_wait(r->loader, 1);
    dc_clear_error();
}

/* The step's batch: made now, or waited for from the loader, which then
 * starts on the next one; *slot: where it lies. */
static dc_status next_batch(run_state *r, int epoch, int step, int steps, int *slot)
{
    int rows = r->hi - r->lo;
    *slot = 0;
    if (!r->loader) return make_batch(r, epoch, step);
    *slot = step % 2;
    dc_status s = dc_loader_wait(r->loader, *slot);
    if (s == DC_OK && step + 1 < steps) dc_loader_submit(r->loader, (step + 1) % 2, step + 1, rows);
    return s;
}

/* The epoch's line of stats.jsonl and the log (keys: the contract). */
static dc_status epoch_stats(run_state *r, const progress_state *ps, int epoch, double waited)
{
    dc_train_config *c = r->c;
    double n = ps->sums[6] > 0 ? ps->sums[6] : 1;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "type", "epoch");
    cJSON_AddNumberToObject(j, "epoch", epoch);
    cJSON_AddNumberToObject(j, "loss", ps->sums[0] / n);
    cJSON_AddNumberToObject(j, "prec", ps->sums[5] / n);
    cJSON_AddNumberToObject(j, "loss_super", ps->sums[1] / n);
    cJSON_AddNumberToObject(j, "prec_super", ps->sums[3] / n);
    cJSON_AddNumberToObject(j, "loss_sub", ps->sums[2] / n);
    cJSON_AddNumberToObject(j, "prec_sub", ps->sums[4] / n);
    cJSON_AddNumberToObject(j, "images", n);
    cJSON_AddNumberToObject(j, "seconds", ps->seconds);
    cJSON_AddNumberToObject(j, "images_per_s", ps->seconds > 0 ? n / ps->seconds : 0);
    cJSON_AddNumberToObject(j, "data_wait_s", waited);
    cJSON_AddNumberToObject(j, "lr", c->lr);
    int steps = (int)(c->epoch_size / r->B);
    cJSON_AddNumberToObject(j, "lr_first", dc_train_lr_at(c, epoch, 0, steps));
    cJSON_AddNumberToObject(j, "lr_last", dc_train_lr_at(c, epoch, steps > 0 ? steps - 1 : 0, steps));
    if (isfinite(r->nmi_prev)) cJSON_AddNumberToObject(j, "nmi_prev", r->nmi_prev);
    else cJSON_AddNullToObject(j, "nmi_prev");
    cJSON_AddNumberToObject(j, "assignment_epoch", r->assign_epoch);
    dc_log_info("epoch %d: loss %.4f (super %.4f, sub %.4f), prec %.3f (super %.3f, sub %.3f), %.1f images/s", epoch,
                ps->sums[0] / n, ps->sums[1] / n, ps->sums[2] / n, ps->sums[5] / n, ps->sums[3] / n, ps->sums[4] / n,
                ps->seconds > 0 ? n / ps->seconds : 0);
    dc_status s = r->rank == 0 ? dc_json_append_line(dc_run_path(r, "stats.jsonl"), j) : DC_OK;
    cJSON_Delete(j);
    return s;
}

static void add_step(progress_state *ps, const dc_step_stats *st)
{
    ps->sums[0] += st->loss * st->n;
    ps->sums[1] += st->loss_super * st->n;
    ps->sums[2] += st->loss_sub * st->n;
    ps->sums[3] += st->correct_super;
    ps->sums[4] += st->correct_sub;
    ps->sums[5] += st->correct_both;
    ps->sums[6] += st->n;
}

dc_status dc_run_train_epoch(run_state *r, progress_state *ps)
{
    dc_train_config *c = r->c;
    int epoch = ps->epoch, steps = (int)(c->epoch_size / r->B);
    for (int s = 0; s < r->S; s++) sample_epoch(r, epoch, s);
    dc_progress_opts po = dc_progress_opts_default();
    po.unit = "step";
    char label[32];
    snprintf(label, sizeof label, "epoch %d", epoch);
    dc_progress *bar = dc_progress_start(label, (uint64_t)steps, &po);
    double t0 = dc_time_now(), waited = 0;
    int rows = r->hi - r->lo, sig = 0;
    dc_status s = DC_OK;
    r->cur_epoch = epoch;
    if (r->loader && ps->step < steps) dc_loader_submit(r->loader, ps->step % 2, ps->step, rows);
    for (int step = ps->step; step < steps && s == DC_OK && !sig; step++) {
        int slot;
        double tw = dc_time_now();
        s = next_batch(r, epoch, step, steps, &slot);
        waited += dc_time_now() - tw;
        if (s) break;
        dc_step_stats st;
        dc_step_compute(&r->st, &r->model, &r->sup, r->subs, r->batch + slot * r->slot_floats,
                        r->tsup + (size_t)slot * rows, r->tsub + (size_t)slot * rows, rows, &st);
        if ((s = dc_step_status(&r->st))) break;
        double lr = dc_train_lr_at(c, epoch, step, steps);
        dc_step_sgd(&r->st, &r->model, &r->sup, r->subs, (float)lr, (float)c->wd);
        if ((s = dc_step_status(&r->st))) break;
        if (!isfinite(st.loss)) {
            s = dc_set_error(DC_STATUS_INTERNAL,
                             "epoch %d step %d: the loss is not finite (%g); lower --lr (now %g; %g at this step)", epoch,
                             step, st.loss, c->lr, lr);
            break;
        }
        add_step(ps, &st);
        ps->step = step + 1;
        char note[64];
        snprintf(note, sizeof note, "loss %.4f", ps->sums[0] / ps->sums[6]);
        dc_progress_set_note(bar, note);
        dc_progress_update(bar, (uint64_t)step + 1);
        sig = dc_run_stop_agreed(c);
    }
    if (s || sig) dc_run_drain_loader(r);
    dc_progress_finish(bar);
    if (s) return s;
    ps->seconds += dc_time_now() - t0;
    if (sig) {
        dc_log_warn("signal %d: writing a checkpoint at epoch %d, step %d", sig, epoch, ps->step);
        s = dc_run_write_checkpoint(r, ps);
        return s ? s : dc_set_error(DC_STATUS_INTERRUPTED, "stopped by signal %d; run the same command to resume", sig);
    }
    return epoch_stats(r, ps, epoch, waited);
}
