/* dir_lock.c - see dir_lock.h */
#include "fetch/dir_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* The PID a holder wrote into the lock file, or 0 if none can be read. */
static long holder_pid(int fd)
{
    char buf[24];
    ssize_t k = pread(fd, buf, sizeof buf - 1, 0);
    if (k <= 0)
        return 0;
    buf[k] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    return pid > 0 && (*end == '\n' || *end == '\0') ? pid : 0;
}

int dir_lock_acquire(dir_lock *l, const char *dir, pg_error *err)
{
    l->fd = -1;
    if ((size_t)snprintf(l->path, sizeof l->path, "%s/%s", dir, DIR_LOCK_NAME) >= sizeof l->path)
        return pg_fail(err, PG_EINVAL, "%s: path too long", dir);
    /* A few rounds at most: each one is lost only to a holder that removed
     * the file between our open() and flock(). */
    for (int round = 0; round < 16; round++) {
        int fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
            return pg_fail(err, PG_EIO, "%s: cannot create the lock file: %s", l->path, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            long pid = e == EWOULDBLOCK ? holder_pid(fd) : 0;
            close(fd);
            if (e != EWOULDBLOCK)
                return pg_fail(err, PG_EIO, "%s: flock: %s", l->path, strerror(e));
            if (pid)
                return pg_fail(err, PG_EINVAL,
                               "%s is in use by another fetch (pid %ld holds %s); wait for it to "
                               "finish or stop it, then rerun",
                               dir, pid, l->path);
            return pg_fail(err, PG_EINVAL,
                           "%s is in use by another process (it holds %s); wait for it to finish "
                           "or stop it, then rerun",
                           dir, l->path);
        }
        struct stat held, named;
        if (fstat(fd, &held) != 0 || stat(l->path, &named) != 0 || held.st_dev != named.st_dev ||
            held.st_ino != named.st_ino) {
            close(fd); /* the holder removed it as it finished: try the new one */
            continue;
        }
        char pid[24];
        int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
            int e = errno;
            close(fd);
            return pg_fail(err, PG_EIO, "%s: write: %s", l->path, strerror(e ? e : EIO));
        }
        l->fd = fd;
        return PG_OK;
    }
    return pg_fail(err, PG_EIO, "%s: the lock file keeps being replaced", l->path);
}

void dir_lock_release(dir_lock *l)
{
    if (l->fd < 0)
        return;
    unlink(l->path);
    close(l->fd);
    l->fd = -1;
}
