/* Benchmark workload A: copy a 64 KiB file N times with stdio (fopen/fread/fwrite).
 * usage: copy64k SRC DSTDIR [N=100] */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s SRC DSTDIR [N]\n", argv[0]); return 2; }
    int n = argc > 3 ? atoi(argv[3]) : 100;
    static char buf[4096];
    char dst[4096];
    for (int i = 0; i < n; i++) {
        snprintf(dst, sizeof dst, "%s/copy%d", argv[2], i % 8);
        FILE *in = fopen(argv[1], "rb");
        FILE *out = fopen(dst, "wb");
        if (!in || !out) { perror("fopen"); return 1; }
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, in)) > 0)
            if (fwrite(buf, 1, got, out) != got) { perror("fwrite"); return 1; }
        fclose(in);
        fclose(out);
    }
    return 0;
}
