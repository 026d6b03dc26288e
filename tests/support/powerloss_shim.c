/* Power-loss file layer for tests (LD_PRELOAD). Compiled by tests/support/powerloss.py into
 * a temporary directory at test time; never commit the binary.
 *
 * For every regular file under $POWERLOSS_DIR it keeps "<name>.synced-image": the file's
 * content as of its last successful fsync/fdatasync. The test then SIGKILLs the writer and
 * replaces each file by its image (a file never synced disappears): exactly the state a
 * power cut leaves when the storage drops every write not yet flushed.
 *
 * Only fsync, fdatasync and unlink need interposing: the image is a copy taken when the
 * sync returns, so write/pwrite/ftruncate need no bookkeeping (their effect is in the file
 * when it is copied, and lost if it is not). unlink removes the image too (a deleted WAL or
 * journal must not come back). sync_file_range/msync are not used by SQLite's unix VFS with
 * mmap_size 0, which is the default the ledger keeps.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SUFFIX ".synced-image"

static int under_dir(const char *path) {
    const char *dir = getenv("POWERLOSS_DIR");
    size_t n;
    if (dir == NULL || path == NULL || path[0] != '/') return 0;
    n = strlen(dir);
    if (n == 0 || strncmp(path, dir, n) != 0 || path[n] != '/') return 0;
    /* our own images and temporaries are not tracked */
    return strstr(path + n, ".synced-") == NULL;
}

/* Copy fd's file to "<path>.synced-image" through a temporary and rename(2): a writer
 * killed during the copy leaves the previous image, as a sync that never returned would. */
static void snapshot(int fd) {
    char link[64], path[PATH_MAX], img[PATH_MAX + 32], tmp[PATH_MAX + 64];
    char buf[1 << 16];
    struct stat st;
    ssize_t n, got;
    off_t off = 0;
    int src, dst, saved = errno;

    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, path, sizeof path - 1);
    if (n <= 0) goto out;
    path[n] = '\0';
    if (!under_dir(path) || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) goto out;
    snprintf(img, sizeof img, "%s" SUFFIX, path);
    snprintf(tmp, sizeof tmp, "%s.synced-tmp.%ld", path, (long)syscall(SYS_gettid));
    src = open(path, O_RDONLY | O_CLOEXEC);
    if (src < 0) goto out;
    dst = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (dst < 0) { close(src); goto out; }
    while ((got = pread(src, buf, sizeof buf, off)) > 0) {
        if (write(dst, buf, (size_t)got) != got) { got = -1; break; }
        off += got;
    }
    close(src);
    close(dst);
    if (got < 0) { unlink(tmp); abort(); } /* a harness that cannot record must not pass */
    if (rename(tmp, img) != 0) abort();
out:
    errno = saved;
}

int fsync(int fd) {
    static int (*real)(int);
    int r;
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    r = real(fd);
    if (r == 0) snapshot(fd);
    return r;
}

int fdatasync(int fd) {
    static int (*real)(int);
    int r;
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    r = real(fd);
    if (r == 0) snapshot(fd);
    return r;
}

int unlink(const char *path) {
    static int (*real)(const char *);
    char img[PATH_MAX + 32];
    int r;
    if (!real) real = (int (*)(const char *))dlsym(RTLD_NEXT, "unlink");
    r = real(path);
    if (r == 0 && under_dir(path)) {
        snprintf(img, sizeof img, "%s" SUFFIX, path);
        real(img);
    }
    return r;
}
