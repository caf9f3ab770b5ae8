/* fuzz_keyjournal.c — journal records: the input is parsed as one key record, and replayed as a
 * whole journal.log by the file store. Neither may crash or leak; a store that opens must hold
 * records that write and parse back to themselves. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "gateway/keys_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];

static void remove_dir(void)
{
    rmdir(dir);
}

static int roundtrip(void *ud, const struct gf_key *k)
{
    (void)ud;
    struct gf_buf b;
    gf_buf_init(&b, 1 << 16);
    struct gf_key back;
    struct gf_err err = {0};
    if (gf_keyrec_write(&b, k) != 0 || gf_keyrec_parse(b.data, b.len, &back, &err) != 0 ||
        strcmp(back.id, k->id) != 0 || strcmp(back.name, k->name) != 0 || back.seq != k->seq)
        abort();
    gf_buf_cleanup(&b);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    struct gf_key k;
    struct gf_err err = {0};
    (void)gf_keyrec_parse((const char *)data, size, &k, &err);

    if (dir[0] == '\0') {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/gf-fuzz-keys-XXXXXX", t && *t ? t : "/tmp");
        if (mkdtemp(dir) == NULL)
            abort();
        atexit(remove_dir);
    }
    char path[300];
    snprintf(path, sizeof(path), "%s/journal.log", dir);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        abort();
    fwrite(data, 1, size, f);
    fclose(f);
    gf_log_set_level(GF_LOG_OFF);
    struct gf_keystore_file_opts o = {1000000, true};
    struct gf_keystore *ks = NULL;
    gf_err_clear(&err);
    if (gf_keystore_open_file(dir, &o, &ks, &err) == 0) {
        ks->ops->list(ks, roundtrip, NULL);
        gf_keystore_close(ks);
    }
    unlink(path);
    snprintf(path, sizeof(path), "%s/snapshot.json", dir);
    unlink(path);
    return 0;
}
