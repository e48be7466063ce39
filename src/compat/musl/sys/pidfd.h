/*
 * sys/pidfd.h for musl - what glibc 2.36's <sys/pidfd.h> (and <unistd.h>'s close_range) give,
 * for rxjob-shim built with musl-gcc (CMakeLists.txt, RX_MUSL_SHIM), whose libc (1.2.3) has no
 * wrappers for these Linux 5.3+ system calls. Only in that build's include path: everything
 * else gets glibc's.
 */
#ifndef RX_COMPAT_MUSL_SYS_PIDFD_H
#define RX_COMPAT_MUSL_SYS_PIDFD_H

#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static inline int
pidfd_open(pid_t pid, unsigned int flags)
{
    return (int)syscall(SYS_pidfd_open, pid, flags);
}

static inline int
pidfd_send_signal(int pidfd, int sig, siginfo_t *info, unsigned int flags)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, info, flags);
}

static inline int
close_range(unsigned int first, unsigned int last, int flags)
{
    return (int)syscall(SYS_close_range, first, last, flags);
}

#endif
