/* Unit tests of `gardefou model info` (gateway/cmd_model.c): output for a file made with the
 * writer (escaped strings, abbreviated and --full arrays, tensor table, totals), exit status 2
 * and a message naming the file for broken files and bad usage, and the shared stories260K. */
#include "gateway/cli.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "engine/gguf.h"
#include "test.h"

static const char *shared_dir = "../shared";

/* Runs gf_cmd_model on args with stdout and stderr captured into *out / *errout (malloc'd). */
static int run(char **args, int n, char **out, char **errout)
{
    char po[] = "/tmp/gf-test-model-out-XXXXXX", pe[] = "/tmp/gf-test-model-err-XXXXXX";
    int fo = mkstemp(po), fe = mkstemp(pe);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(fo, 1);
    dup2(fe, 2);
    int rc = gf_cmd_model(n, args);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    char **dst[2] = {out, errout};
    int fds[2] = {fo, fe};
    for (int k = 0; k < 2; k++) {
        off_t len = lseek(fds[k], 0, SEEK_END);
        *dst[k] = calloc(1, (size_t)len + 1);
        if (*dst[k] != NULL && len > 0 && pread(fds[k], *dst[k], (size_t)len, 0) != len)
            (*dst[k])[0] = '\0';
        close(fds[k]);
    }
    unlink(po);
    unlink(pe);
    return rc;
}

static char path[] = "/tmp/gf-test-model-XXXXXX";

static void make_file(void)
{
    int fd = mkstemp(path);
    close(fd);
    struct gf_gguf_writer *w = gf_gguf_writer_new();
    int32_t ten[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    const char *strs[] = {"a", "b\"q", "c"};
    float data[64] = {0};
    uint8_t q8[34 * 2] = {0};
    uint64_t ne[2] = {32, 2}, ne1[1] = {64};
    int rc = gf_gguf_writer_add_str(w, "general.architecture", "llama", 5);
    rc |= gf_gguf_writer_add_str(w, "t.escaped", "line1\nline2\t\"x\"\x01", 16);
    rc |= gf_gguf_writer_add_arr(w, "t.ten", GF_GGUF_TYPE_INT32, ten, 10);
    rc |= gf_gguf_writer_add_arr_str(w, "t.strs", strs, NULL, 3);
    rc |= gf_gguf_writer_add_bool(w, "t.flag", true);
    rc |= gf_gguf_writer_add_f32(w, "t.eps", 0.5f);
    rc |= gf_gguf_writer_add_tensor(w, "w.q8", GF_TYPE_Q8_0, 2, ne, q8, sizeof(q8), true);
    rc |= gf_gguf_writer_add_tensor(w, "w.f32", GF_TYPE_F32, 1, ne1, data, sizeof(data), true);
    rc |= gf_gguf_writer_write(w, path, NULL);
    gf_gguf_writer_free(w);
    CHECK(rc == 0);
}

static void test_info(void)
{
    char *out, *err;
    char *args[] = {"model", "info", path};
    CHECK(run(args, 3, &out, &err) == 0);
    CHECK(strstr(out, "GGUF version 3") != NULL);
    CHECK(strstr(out, "metadata: 6 keys") != NULL);
    CHECK(strstr(out, "\"line1\\nline2\\t\\\"x\\\"\\x01\"") != NULL);
    CHECK(strstr(out, "[int32 x 10] 0, 1, 2, 3, ...") != NULL);
    CHECK(strstr(out, "[string x 3] \"a\", \"b\\\"q\", \"c\"") != NULL);
    CHECK(strstr(out, "t.flag") != NULL && strstr(out, "true") != NULL);
    CHECK(strstr(out, "w.q8") != NULL && strstr(out, "Q8_0") != NULL &&
          strstr(out, "32 x 2") != NULL);
    CHECK(strstr(out, "total: 2 tensors, 128 elements, 324 bytes") != NULL);
    CHECK(strstr(out, "F32: 1, Q8_0: 1") != NULL);
    CHECK(strstr(out, "tokenizer: none usable (tokenizer.ggml.model: missing") != NULL);
    free(out);
    free(err);
    char *full[] = {"model", "info", "--full", "--no-tensors", path};
    CHECK(run(full, 5, &out, &err) == 0);
    CHECK(strstr(out, "0, 1, 2, 3, 4, 5, 6, 7, 8, 9") != NULL);
    CHECK(strstr(out, "w.q8") == NULL);
    free(out);
    free(err);
}

static void test_errors(void)
{
    char *out, *err;
    // A truncated copy.
    char bad[] = "/tmp/gf-test-model-bad-XXXXXX";
    int fd = mkstemp(bad);
    FILE *f = fopen(path, "rb");
    char buf[100];
    size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
    if (f)
        fclose(f);
    CHECK(write(fd, buf, n) == (ssize_t)n);
    close(fd);
    char *a1[] = {"model", "info", bad};
    CHECK(run(a1, 3, &out, &err) == 2);
    CHECK(strstr(err, bad) != NULL);
    CHECK(out[0] == '\0');
    free(out);
    free(err);
    unlink(bad);
    char *a2[] = {"model", "info", "/nonexistent.gguf"};
    CHECK(run(a2, 3, &out, &err) == 2 && strstr(err, "/nonexistent.gguf") != NULL);
    free(out);
    free(err);
    char *a3[] = {"model", "info"};
    CHECK(run(a3, 2, &out, &err) == 2 && strstr(err, "usage") != NULL);
    free(out);
    free(err);
    char *a4[] = {"model", "info", "--bogus", path};
    CHECK(run(a4, 4, &out, &err) == 2);
    free(out);
    free(err);
    char *a5[] = {"model", "frobnicate"};
    CHECK(run(a5, 2, &out, &err) == 2 && strstr(err, "unknown command") != NULL);
    free(out);
    free(err);
    char *a6[] = {"model"};
    CHECK(run(a6, 1, &out, &err) == 2);
    free(out);
    free(err);
    char *a7[] = {"model", "--help"};
    CHECK(run(a7, 2, &out, &err) == 0 && strstr(out, "info") != NULL);
    free(out);
    free(err);
    char *a8[] = {"model", "info", "--help"};
    CHECK(run(a8, 3, &out, &err) == 0 && strstr(out, "--full") != NULL);
    free(out);
    free(err);
}

static void test_stories(void)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/models/stories260K.gguf", shared_dir);
    if (access(p, R_OK) != 0) {
        fprintf(stderr, "note: %s absent, skipped\n", p);
        return;
    }
    char *out, *err;
    char *args[] = {"model", "info", p};
    CHECK(run(args, 3, &out, &err) == 0);
    CHECK(strstr(out, "metadata: 19 keys") != NULL);
    CHECK(strstr(out, "llama.context_length") != NULL);
    CHECK(strstr(out, "[string x 512] \"<unk>\", \"<s>\", \"</s>\", \"<0x00>\", ...") != NULL);
    CHECK(strstr(out, "total: 48 tensors") != NULL && strstr(out, "F32: 48") != NULL);
    CHECK(strstr(out, "tokenizer: SentencePiece, 512 tokens, BOS 1, EOS 2, UNK 0, adds BOS: yes") !=
          NULL);
    CHECK(strstr(out, "chat template: llama2 (default: the file has none)") != NULL);
    free(out);
    free(err);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        shared_dir = argv[1];
    make_file();
    RUN(test_info);
    RUN(test_errors);
    RUN(test_stories);
    unlink(path);
    return test_report();
}
