#ifndef QUARRY_CLIBBPF_SHIM_H
#define QUARRY_CLIBBPF_SHIM_H
#include <stdarg.h>
#include <stdio.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include "quarry_events.h"

/* libbpf reports through a printf-style callback with a va_list, which Swift cannot define:
 * this one formats each message into a fixed ring of the last lines (bounded memory, even for
 * verifier logs of megabytes) that Swift reads after a failed load. */
#define QUARRY_LIBBPF_LOG_SIZE 16384
struct quarry_libbpf_log_buffer { unsigned long used; char text[QUARRY_LIBBPF_LOG_SIZE]; };

/* Function-local storage: a header's file-scope statics are not emitted for Swift. */
static inline struct quarry_libbpf_log_buffer *quarry_libbpf_log(void) {
    static struct quarry_libbpf_log_buffer buffer;
    return &buffer;
}

static int quarry_libbpf_print(enum libbpf_print_level level, const char *format, va_list args) {
    if (level == LIBBPF_DEBUG) return 0;
    struct quarry_libbpf_log_buffer *log = quarry_libbpf_log();
    char line[1024];
    int n = vsnprintf(line, sizeof(line), format, args);
    if (n <= 0) return 0;
    if ((unsigned long)n >= sizeof(line)) n = sizeof(line) - 1;
    if (log->used + (unsigned long)n >= QUARRY_LIBBPF_LOG_SIZE) {
        /* Keep the newest half. */
        unsigned long keep = QUARRY_LIBBPF_LOG_SIZE / 2;
        if (log->used > keep) {
            __builtin_memmove(log->text, log->text + log->used - keep, keep);
            log->used = keep;
        }
    }
    if (log->used + (unsigned long)n < QUARRY_LIBBPF_LOG_SIZE) {
        __builtin_memcpy(log->text + log->used, line, (unsigned long)n);
        log->used += (unsigned long)n;
        log->text[log->used] = 0;
    }
    return 0;
}

static inline void quarry_libbpf_clear_log(void) {
    quarry_libbpf_log()->used = 0;
    quarry_libbpf_log()->text[0] = 0;
}

static inline void quarry_libbpf_capture_log(void) {
    quarry_libbpf_clear_log();
    libbpf_set_print(quarry_libbpf_print);
}

static inline const char *quarry_libbpf_log_text(void) { return quarry_libbpf_log()->text; }
#endif
