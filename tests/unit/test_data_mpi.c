// test_data_mpi.c: under mpirun, every rank opens the same dataset on its own (default
// sec2 driver, no collective open) and reads its slice of each global batch; together the
// ranks read every sample of the batch exactly once, with the right tokens. Rank 0
// writes the file (token t of the stream = (t*7+3) % 259, so every rank can check what
// it read without another copy). Run with any number of ranks.
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/sampler.h"
#include "data/writer.h"

#define N_TOKENS 20000
#define SEQ 31
#define G 8
#define BATCHES 3

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    char path[128] = {0};
    long bad = 0;
    kd_error err = {0};
    if (rank == 0) {
        snprintf(path, sizeof path, "/tmp/kd_data_mpi_%ld.h5", (long)getpid());
        int32_t *t = malloc(N_TOKENS * sizeof *t);
        for (int i = 0; i < N_TOKENS; i++) t[i] = (i * 7 + 3) % 259;
        kd_dataset_writer *w;
        if (kd_dataset_writer_open(&w, path, "tokens", 259, 256, 257, 258, 0, "bytes", &err) ||
            kd_dataset_writer_add(w, t, NULL, N_TOKENS, &err) ||
            kd_dataset_writer_close(w, 1, &err)) {
            fprintf(stderr, "FAIL rank 0: writing %s: %s\n", path, err.msg);
            bad++;
        }
        free(t);
    }
    MPI_Bcast(path, sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD);

    kd_dataset *d = NULL;
    long read = 0;
    char *seen = calloc(BATCHES * G, 1); // which global positions this rank read
    if (kd_dataset_open(&d, path, &err)) {
        fprintf(stderr, "FAIL rank %d: open: %s\n", rank, err.msg);
        bad++;
    } else {
        uint64_t nw = kd_dataset_n_windows(d, SEQ);
        int32_t tok[G * (SEQ + 1)];
        float lw[G * SEQ];
        for (uint64_t g = 0; g < BATCHES; g++) {
            uint64_t first, count, idx[G];
            kd_sampler_rank_slice(G, world, rank, &first, &count);
            for (uint64_t j = 0; j < count; j++) {
                idx[j] = kd_sampler_window(7, nw, g * G + first + j);
                seen[g * G + first + j] = 1;
            }
            if (kd_dataset_read_windows(d, idx, (int)count, SEQ, tok, lw, &err)) {
                fprintf(stderr, "FAIL rank %d: read: %s\n", rank, err.msg);
                bad++;
                break;
            }
            for (uint64_t j = 0; j < count; j++)
                for (int k = 0; k <= SEQ; k++) {
                    int want = (int)((idx[j] * SEQ + k) * 7 + 3) % 259;
                    if (tok[j * (SEQ + 1) + k] != want) {
                        if (bad < 5)
                            fprintf(stderr, "FAIL rank %d: window %llu token %d = %d, want %d\n",
                                    rank, (unsigned long long)idx[j], k, tok[j * (SEQ + 1) + k],
                                    want);
                        bad++;
                    }
                }
            read += (long)count;
        }
        kd_dataset_close(d);
    }
    long tot_bad, tot_read;
    char all_seen[BATCHES * G];
    MPI_Allreduce(&bad, &tot_bad, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&read, &tot_read, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(seen, all_seen, BATCHES * G, MPI_CHAR, MPI_SUM, MPI_COMM_WORLD);
    int cover_ok = 1;
    for (int p = 0; p < BATCHES * G; p++) cover_ok &= all_seen[p] == 1;
    free(seen);
    if (rank == 0) {
        unlink(path);
        if (tot_read != BATCHES * G || !cover_ok)
            fprintf(stderr, "FAIL: %d ranks read %ld samples (want %d), each once: %s\n", world,
                    tot_read, BATCHES * G, cover_ok ? "yes" : "no");
        else if (!tot_bad)
            printf("test_data_mpi: %d ranks read %ld samples correctly\n", world, tot_read);
    }
    int ok = tot_bad == 0 && tot_read == BATCHES * G && cover_ok;
    MPI_Finalize();
    return ok ? 0 : 1;
}
