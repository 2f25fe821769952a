#!/usr/bin/env bash
# determinism.sh - fail when code under nokv/ reaches the OS directly.
#
# Everything in nokv/ must go through the runtime interface (nokv/rt.h) so
# the same code runs in production and, deterministically, in nokv-sim.
# This script greps for calls (identifier followed by '(') and includes of
# OS headers. Comments and string literals are stripped first, so a comment
# that mentions time() does not trip it.
#
# usage: tools/lint/determinism.sh [DIR]     (default: nokv)
# exit:  0 clean, 1 violations found (each printed as file:line: text)
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-$root/nokv}

# Functions that touch time, randomness, files, sockets, threads, processes,
# the environment or the terminal.
calls='time|clock_gettime|gettimeofday|clock|localtime|gmtime|mktime|strftime|ftime|'\
'rand|random|srand|srandom|drand48|lrand48|mrand48|rand_r|getrandom|getentropy|arc4random|'\
'open|openat|creat|close|read|write|pread|pwrite|readv|writev|lseek|fsync|fdatasync|sync|'\
'syncfs|ftruncate|truncate|fstat|stat|lstat|mkdir|rmdir|unlink|unlinkat|rename|renameat|'\
'link|symlink|opendir|readdir|closedir|scandir|flock|fcntl|ioctl|mmap|munmap|msync|'\
'fopen|fdopen|freopen|fclose|fread|fwrite|fgets|fputs|fflush|fseek|ftell|tmpfile|mkstemp|'\
'printf|fprintf|vprintf|vfprintf|dprintf|puts|putchar|getchar|perror|'\
'socket|bind|listen|accept|accept4|connect|send|sendto|sendmsg|recv|recvfrom|recvmsg|'\
'shutdown|setsockopt|getsockopt|getaddrinfo|gethostbyname|poll|select|epoll_create|'\
'epoll_create1|epoll_ctl|epoll_wait|eventfd|signalfd|timerfd_create|'\
'pthread_[a-z_]+|thrd_[a-z_]+|mtx_[a-z_]+|cnd_[a-z_]+|fork|vfork|exec[lvpe]*|system|popen|'\
'sleep|usleep|nanosleep|alarm|signal|sigaction|raise|kill|'\
'getenv|setenv|putenv|unsetenv|secure_getenv|getpid|gethostname|uname|sysconf|exit|_exit|'\
'atexit|quick_exit'

# Headers that only exist to reach the OS.
headers='unistd\.h|fcntl\.h|sys/[a-z_]+\.h|pthread\.h|threads\.h|time\.h|dirent\.h|'\
'netinet/[a-z_]+\.h|arpa/inet\.h|netdb\.h|signal\.h|poll\.h|termios\.h|dlfcn\.h'

status=0
while IFS= read -r -d '' f; do
    # Strip /* */ comments, // comments and string/char literals, keeping
    # line numbers (newlines inside comments are preserved).
    stripped=$(perl -0777 -pe '
        s{/\*.*?\*/}{ my $c = $&; $c =~ s/[^\n]//g; $c }gse;
        s{//[^\n]*}{}g;
        s{"(?:\\.|[^"\\\n])*"}{""}g;
        s{'"'"'(?:\\.|[^'"'"'\\\n])*'"'"'}{0}g;
    ' "$f")
    hits=$(printf '%s\n' "$stripped" | grep -nE "(^|[^A-Za-z0-9_.>])($calls)[[:space:]]*\(" |
           grep -vE "^[0-9]+:[[:space:]]*#[[:space:]]*define")
    if [ -n "$hits" ]; then
        while IFS= read -r h; do
            echo "$f:${h%%:*}: direct OS call: ${h#*:}"
        done <<<"$hits"
        status=1
    fi
    inc=$(printf '%s\n' "$stripped" | grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*<($headers)>")
    if [ -n "$inc" ]; then
        while IFS= read -r h; do
            echo "$f:${h%%:*}: OS header: ${h#*:}"
        done <<<"$inc"
        status=1
    fi
done < <(find "$dir" -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)

if [ $status -ne 0 ]; then
    echo "determinism lint: nokv/ must use the runtime interface (nokv/rt.h) instead;" \
         "see docs/contributing.md" >&2
else
    echo "determinism lint: clean ($(find "$dir" -type f \( -name '*.c' -o -name '*.h' \) | wc -l) files)"
fi
exit $status
