/* Replays every file of a fuzz target's corpus directory (seeds and the
 * regression inputs of past findings) through its LLVMFuzzerTestOneInput.
 * Linked with each tests/fuzz/fuzz_<name>.c into build/tests/test_fuzz_<name>,
 * so the default suite (and `make asan`) re-runs every finding ever fixed.
 * The real files listed in tests/fuzz/seeds_<name>.txt (paths under
 * $ZIPCACHE_ASSETS) are replayed too, so the sanitizer build reads them.
 * Usage: test_fuzz_<name> [DIR]   (default tests/fuzz/corpus/<name>) */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern const char *const FUZZ_TARGET_NAME;
/* Optional, defined by targets that need assets: NULL when ready, else why not
 * (the replay is then reported as skipped, never as passed). */
const char *fuzz_target_missing(void) __attribute__((weak));

static int replay_file(const char *path) {
    char *buf;
    size_t len;
    if (zc_read_file(path, (size_t)64 << 20, &buf, &len) != 0) return 0;
    /* a copy of exactly len bytes so ASan sees reads past the input */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        return 0;
    }
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 1;
}

static int replay_seed_list(void) {
    char list[1024], line[1024], path[2048];
    snprintf(list, sizeof list, "tests/fuzz/seeds_%s.txt", FUZZ_TARGET_NAME);
    FILE *f = fopen(list, "r");
    if (!f) return 0;
    const char *root = getenv("ZIPCACHE_ASSETS");
    if (!root || !*root) root = "../shared";
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0]) continue;
        snprintf(path, sizeof path, "%s/%s", root, line);
        n += replay_file(path);
    }
    fclose(f);
    return n;
}

int main(int argc, char **argv) {
    char dir[1024];
    if (argc > 1) snprintf(dir, sizeof dir, "%s", argv[1]);
    else snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", FUZZ_TARGET_NAME);
    const char *missing = fuzz_target_missing ? fuzz_target_missing() : NULL;
    if (missing) {
        printf("SKIP fuzz_replay_%s: %s\n", FUZZ_TARGET_NAME, missing);
        return 0;
    }
    DIR *d = opendir(dir);
    if (!d) {
        printf("SKIP fuzz_replay_%s: no corpus at %s\n", FUZZ_TARGET_NAME, dir);
        return 0;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        n += replay_file(path);
    }
    closedir(d);
    if (argc <= 1) n += replay_seed_list();
    /* reaching here means no input crashed or tripped a sanitizer */
    printf("PASS fuzz_replay_%s (%d inputs)\n", FUZZ_TARGET_NAME, n);
    return 0;
}
