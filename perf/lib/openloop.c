/* openloop: open-loop, fixed-rate HTTPS/1.1 load on 127.0.0.1:PORT over N keep-alive TLS connections.
 *
 *   openloop PORT CONNS RATE SECONDS [-p PROCS] [-P PATH] [-w WARMUP_S] [-t TIMEOUT_S] [-r READY_FILE] [-R] [-d DUMP]
 *
 * wrk is closed-loop: a slow response delays the next request, so the stalls it should measure are never sent
 * ("coordinated omission"), and it cannot hold a rate below saturation. Here request j (j = 0, 1, ...) is
 * *scheduled* at start + j/RATE on connection j mod CONNS (one request per connection every CONNS/RATE seconds,
 * phases spread evenly), whether or not the server has kept up. A connection still busy with an earlier request
 * queues the next one and sends it as soon as the response is in. Latency = response complete - scheduled time,
 * so queueing behind a stall counts in full.
 *
 *   S7 (p99 at a fixed rate below saturation):  openloop PORT 64 5000 10 -w 2
 *   S8 (10,000 held connections, 1 request each per ~10 s):  openloop PORT 10000 1000 40 -p 4 -r ready.txt
 *
 * PROCS child processes (default 1) each run one epoll loop with CONNS/PROCS connections at RATE/PROCS.
 * Connections are opened first (full TLS handshakes, ALPN http/1.1, 64 at a time per process; -R offers the
 * newest session ticket instead, for fast opening); the load starts when every process has opened its share
 * (give-up after 120 s). -r writes "READY open=<n> failed=<m> secs=<t>" to READY_FILE at that moment.
 * Requests scheduled in the first WARMUP_S seconds are sent but not recorded. At the end, responses still
 * missing after TIMEOUT_S (default 5) and requests never sent count as errors ("timeout", "unsent").
 * A connection the server closes is reopened (counted in "closed"). Responses need Content-Length.
 * -d DUMP writes each recorded response as a line "SCHEDULED LATENCY_US" (SCHEDULED in CLOCK_MONOTONIC seconds, the
 * clock of `perf record -k CLOCK_MONOTONIC`) to DUMP, or DUMP.K for process K when PROCS > 1: perf/lib/tail.py reads
 * them to tell stalls (many requests late together) from a spread tail.
 * Prints a readable block, then one parseable line:
 *   RESULT open=.. open_failed=.. scheduled=.. ok=.. non2xx=.. closed=.. timeout=.. unsent=.. rate=..
 *          p50_ms=.. p90_ms=.. p99_ms=.. p999_ms=.. max_ms=.. send_lag_p99_ms=.. secs=..
 * send_lag = how late the client itself sent (time between schedule and write, when the connection was free):
 * if its p99 is not far below the latency p99, the client, not the server, is the bottleneck.
 * build: gcc -O2 -Wall -o openloop openloop.c -lssl -lcrypto
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXPROCS 64
#define QCAP 16          /* requests a busy connection may queue before the rest count as unsent */
#define HDRMAX 16384
#define OPEN_PARALLEL 64

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

enum st { ST_NONE, ST_CONNECTING, ST_HANDSHAKE, ST_IDLE, ST_WRITING, ST_READING };

struct conn {
    int fd, idx;
    SSL *ssl;
    enum st st;
    double sched;                 /* scheduled time of the request in flight */
    double q[QCAP]; int qh, qn;   /* queued scheduled times */
    char hdr[HDRMAX]; int hlen;
    long body_left;               /* -1 while headers are incomplete */
    int status, wpos;
};

/* Per-process counters and samples, in memory shared with the parent. */
struct shared {
    long open, open_failed, scheduled, ok, non2xx, closed, timeout, unsent, recorded, lagn;
    double open_secs;
    int ready;
    char proto[32], cipher[64];
};

static int port, conns_total, procs = 1, reuse_ticket, max_samples;
static double rate, secs, warmup, timeout_s = 5;
static const char *path = "/", *ready_file, *dump_path;
static FILE *dump;
static char req[1024]; static int req_len;
static SSL_CTX *ctx;
static SSL_SESSION *ticket;
static int ep;
static struct shared *sh_all;
static uint32_t *samples_all, *lag_all;     /* microseconds */
static volatile int *go_flag; static volatile double *go_at;

static void set_ev(struct conn *c, uint32_t ev) {
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void conn_close(struct conn *c) {
    if (c->ssl) { SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN); SSL_free(c->ssl); c->ssl = NULL; }
    if (c->fd >= 0) { epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL); close(c->fd); c->fd = -1; }
    c->st = ST_NONE;
}

static int conn_start(struct conn *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) return -1;
    int one = 1; setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {0}; a.sin_family = AF_INET; a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) { close(c->fd); c->fd = -1; return -1; }
    c->ssl = SSL_new(ctx);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    if (reuse_ticket && ticket) SSL_set_session(c->ssl, ticket);
    SSL_set_connect_state(c->ssl);
    c->st = ST_CONNECTING;
    struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
    return 0;
}

/* Drives the handshake; 1 done, 0 in progress, -1 failed. */
static int handshake(struct conn *c) {
    if (c->st == ST_CONNECTING) {
        int err = 0; socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) return -1;
        c->st = ST_HANDSHAKE;
    }
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        if (reuse_ticket) { SSL_SESSION *s = SSL_get1_session(c->ssl); if (s) { if (ticket) SSL_SESSION_free(ticket); ticket = s; } }
        c->st = ST_IDLE;
        set_ev(c, EPOLLIN);
        return 1;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) { set_ev(c, EPOLLIN); return 0; }
    if (e == SSL_ERROR_WANT_WRITE) { set_ev(c, EPOLLOUT); return 0; }
    return -1;
}

static struct shared *me;
static uint32_t *my_samples, *my_lag;
static double t_start, t_record;

static void record(double sched, double done) {
    if (sched < t_record) return;
    if (me->recorded < max_samples) my_samples[me->recorded++] = (uint32_t)((done - sched) * 1e6 + 0.5);
    if (dump) fprintf(dump, "%.6f %u\n", sched, (uint32_t)((done - sched) * 1e6 + 0.5));
}

static int try_write(struct conn *c) {
    while (c->wpos < req_len) {
        int r = SSL_write(c->ssl, req + c->wpos, req_len - c->wpos);
        if (r > 0) { c->wpos += r; continue; }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE) { c->st = ST_WRITING; set_ev(c, EPOLLOUT); return 0; }
        if (e == SSL_ERROR_WANT_READ) { c->st = ST_WRITING; set_ev(c, EPOLLIN); return 0; }
        return -1;
    }
    c->st = ST_READING; c->hlen = 0; c->body_left = -1;
    set_ev(c, EPOLLIN);
    return 1;
}

static void send_req(struct conn *c, double sched) {
    double t = now();
    c->sched = sched; c->wpos = 0;
    if (sched >= t_record && me->lagn < max_samples) my_lag[me->lagn++] = (uint32_t)((t - sched) * 1e6 + 0.5);
    if (try_write(c) < 0) { conn_close(c); me->closed++; }
}

static void dispatch(struct conn *c, double sched) {
    me->scheduled++;
    if (c->st == ST_IDLE) { send_req(c, sched); return; }
    if (c->qn < QCAP) { c->q[(c->qh + c->qn++) % QCAP] = sched; return; }
    me->unsent++;
}

static void next_or_idle(struct conn *c) {
    c->st = ST_IDLE;
    set_ev(c, EPOLLIN);
    if (c->qn > 0) { double s = c->q[c->qh]; c->qh = (c->qh + 1) % QCAP; c->qn--; send_req(c, s); }
}

/* Reads what is there; completes responses. Returns -1 when the connection is gone. */
static int on_read(struct conn *c) {
    char buf[32768];
    for (;;) {
        int r = SSL_read(c->ssl, buf, sizeof buf);
        if (r <= 0) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) return 0;
            if (e == SSL_ERROR_WANT_WRITE) { set_ev(c, EPOLLOUT | EPOLLIN); return 0; }
            return -1;
        }
        if (c->st != ST_READING) continue;   /* nothing expected: ignore (should not happen) */
        int off = 0;
        while (off < r && c->st == ST_READING) {
            if (c->body_left < 0) {
                int take = r - off; if (take > HDRMAX - 1 - c->hlen) take = HDRMAX - 1 - c->hlen;
                if (take <= 0) return -1;   /* header too large */
                memcpy(c->hdr + c->hlen, buf + off, take);
                int old = c->hlen; c->hlen += take; c->hdr[c->hlen] = 0;
                char *e = strstr(c->hdr, "\r\n\r\n");
                if (!e) { off += take; continue; }
                int hend = (int)(e + 4 - c->hdr);
                off += hend - old;
                c->status = atoi(c->hdr + 9);
                long cl = -1;
                for (char *p = c->hdr; p < e; p++)
                    if ((p == c->hdr || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) cl = atol(p + 15);
                if (cl < 0) return -1;   /* chunked or close-delimited: not supported */
                c->body_left = cl;
            }
            long take = r - off; if (take > c->body_left) take = c->body_left;
            off += take; c->body_left -= take;
            if (c->body_left == 0) {
                double t = now();
                if (c->status >= 200 && c->status < 300) { me->ok++; record(c->sched, t); }
                else me->non2xx++;
                next_or_idle(c);
            }
        }
    }
}

static void child(int k) {
    me = &sh_all[k];
    if (dump_path) {
        char name[4096];
        if (procs > 1) snprintf(name, sizeof name, "%s.%d", dump_path, k); else snprintf(name, sizeof name, "%s", dump_path);
        if (!(dump = fopen(name, "w"))) { perror(name); _exit(2); }
    }
    my_samples = samples_all + (size_t)k * max_samples;
    my_lag = lag_all + (size_t)k * max_samples;
    int n = conns_total / procs + (k < conns_total % procs);
    double my_rate = rate / procs;
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, reuse_ticket ? SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE : SSL_SESS_CACHE_OFF);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    ep = epoll_create1(0);
    struct conn *cs = calloc(n, sizeof *cs);
    for (int i = 0; i < n; i++) { cs[i].fd = -1; cs[i].idx = i; }
    struct epoll_event evs[512];

    /* Open phase. */
    double t0 = now();
    int next = 0, pending = 0, opened = 0, failed = 0;
    while (opened + failed < n && now() - t0 < 120) {
        while (pending < OPEN_PARALLEL && next < n) {
            if (conn_start(&cs[next]) == 0) pending++; else failed++;
            next++;
        }
        int m = epoll_wait(ep, evs, 512, 100);
        for (int i = 0; i < m; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->st == ST_IDLE) {   /* post-handshake data (session tickets) or the server closing */
                if (on_read(c) < 0) { conn_close(c); opened--; failed++; }
                continue;
            }
            int r = handshake(c);
            if (r == 1) { opened++; pending--; }
            else if (r < 0) { conn_close(c); failed++; pending--; }
        }
    }
    me->open = opened; me->open_failed = n - opened;
    me->open_secs = now() - t0;
    for (int i = 0; i < n; i++)
        if (cs[i].st == ST_IDLE && cs[i].ssl) {
            snprintf(me->proto, sizeof me->proto, "%s", SSL_get_version(cs[i].ssl));
            snprintf(me->cipher, sizeof me->cipher, "%s", SSL_get_cipher_name(cs[i].ssl));
            break;
        }
    for (int i = 0; i < n; i++) if (cs[i].st != ST_IDLE && cs[i].st != ST_NONE) conn_close(&cs[i]);
    __atomic_store_n(&me->ready, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(go_flag, __ATOMIC_ACQUIRE)) usleep(1000);

    /* Load phase: request j of this process at start + (j + k/procs)/my_rate, on connection j mod n. */
    t_start = *go_at + (double)k / rate;
    t_record = t_start + warmup;
    long total = (long)(my_rate * secs);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct epoll_event te = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &te);
    long j = 0;
    double end = t_start + secs, drain_until = end + timeout_s;
    for (;;) {
        double t = now();
        while (j < total && t_start + j / my_rate <= t) {
            struct conn *c = &cs[j % n];
            double sched = t_start + j / my_rate;
            if (c->st == ST_NONE && c->fd < 0 && opened > 0) conn_start(c);
            if (c->st == ST_NONE) { me->scheduled++; me->unsent++; }
            else dispatch(c, sched);
            j++;
        }
        int busy = 0;
        if (j >= total) {
            for (int i = 0; i < n && !busy; i++) busy = cs[i].st == ST_READING || cs[i].st == ST_WRITING || cs[i].qn > 0 ||
                                                    cs[i].st == ST_CONNECTING || cs[i].st == ST_HANDSHAKE;
            if (!busy || t >= drain_until) break;
        }
        int wait_ms = 100;
        if (j < total) {
            double due = t_start + j / my_rate;
            struct itimerspec its = {0};
            its.it_value.tv_sec = (time_t)due;
            its.it_value.tv_nsec = (long)((due - (time_t)due) * 1e9);
            if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
            wait_ms = -1;
        }
        int m = epoll_wait(ep, evs, 512, wait_ms);
        for (int i = 0; i < m; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) { uint64_t x; if (read(tfd, &x, sizeof x) < 0) {} continue; }
            if (c->st == ST_CONNECTING || c->st == ST_HANDSHAKE) {
                int r = handshake(c);
                if (r == 1) next_or_idle(c);
                else if (r < 0) { conn_close(c); me->unsent += c->qn; c->qn = 0; }
                continue;
            }
            int lost = 0;
            if (c->st == ST_WRITING) {
                int r = try_write(c);
                if (r < 0) lost = 1;
                else if (r == 0) continue;
            }
            if (!lost) lost = on_read(c) < 0 || ((evs[i].events & (EPOLLHUP | EPOLLERR)) && c->st != ST_READING);
            if (lost) {   /* the server closed (or broke) the connection: count it, reopen to keep the count */
                me->closed++;
                me->unsent += c->qn; c->qn = 0;
                conn_close(c);
                if (now() < end) conn_start(c);
            }
        }
    }
    for (int i = 0; i < n; i++) {
        if (cs[i].st == ST_READING || cs[i].st == ST_WRITING) me->timeout++;
        me->unsent += cs[i].qn;
    }
    me->unsent += total - j;
    me->scheduled += total - j;
    if (dump) fclose(dump);
    _exit(0);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(uint32_t *v, long n, double p) {
    if (n == 0) return 0;
    long i = (long)(p / 100.0 * n); if (i >= n) i = n - 1;
    return v[i] / 1000.0;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s PORT CONNS RATE SECONDS [-p PROCS] [-P PATH] [-w WARMUP_S] [-t TIMEOUT_S] [-r READY_FILE] [-R] [-d DUMP]\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]); conns_total = atoi(argv[2]); rate = atof(argv[3]); secs = atof(argv[4]);
    for (int i = 5; i < argc; i++) {
        if (!strcmp(argv[i], "-p") && i + 1 < argc) procs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-P") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "-w") && i + 1 < argc) warmup = atof(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) timeout_s = atof(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) ready_file = argv[++i];
        else if (!strcmp(argv[i], "-R")) reuse_ticket = 1;
        else if (!strcmp(argv[i], "-d") && i + 1 < argc) dump_path = argv[++i];
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (procs < 1) procs = 1;
    if (procs > MAXPROCS) procs = MAXPROCS;
    if (procs > conns_total) procs = conns_total;
    if (conns_total < 1 || rate <= 0 || secs <= 0) { fprintf(stderr, "CONNS, RATE and SECONDS must be > 0\n"); return 2; }
    req_len = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: openloop\r\n\r\n", path);

    struct rlimit rl; getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)conns_total / procs + 64) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
    signal(SIGPIPE, SIG_IGN);

    max_samples = (int)(rate / procs * secs * 1.05) + 1024;
    size_t shsz = sizeof(struct shared) * procs + 64;
    size_t smp = (size_t)max_samples * procs * sizeof(uint32_t);
    char *mem = mmap(NULL, shsz + 2 * smp, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) { perror("mmap"); return 1; }
    go_flag = (volatile int *)mem; go_at = (volatile double *)(mem + 8);
    sh_all = (struct shared *)(mem + 64);
    samples_all = (uint32_t *)(mem + shsz);
    lag_all = (uint32_t *)(mem + shsz + smp);

    pid_t kids[MAXPROCS];
    double t0 = now();
    for (int k = 0; k < procs; k++) {
        pid_t pid = fork();
        if (pid == 0) child(k);
        kids[k] = pid;
    }
    for (;;) {   /* barrier: every process has opened its connections */
        int r = 0; for (int k = 0; k < procs; k++) r += __atomic_load_n(&sh_all[k].ready, __ATOMIC_ACQUIRE);
        if (r == procs) break;
        usleep(2000);
    }
    long open = 0, open_failed = 0;
    for (int k = 0; k < procs; k++) { open += sh_all[k].open; open_failed += sh_all[k].open_failed; }
    double open_secs = now() - t0;
    if (ready_file) {
        char tmp[4096]; snprintf(tmp, sizeof tmp, "%s.tmp", ready_file);
        FILE *f = fopen(tmp, "w");
        if (f) { fprintf(f, "READY open=%ld failed=%ld secs=%.2f\n", open, open_failed, open_secs); fclose(f); rename(tmp, ready_file); }
    }
    *go_at = now() + 0.05;
    __atomic_store_n(go_flag, 1, __ATOMIC_RELEASE);
    for (int k = 0; k < procs; k++) waitpid(kids[k], NULL, 0);
    double wall = now() - *go_at;

    struct shared tot = {0};
    long ns = 0, nl = 0;
    for (int k = 0; k < procs; k++) {
        struct shared *s = &sh_all[k];
        tot.scheduled += s->scheduled; tot.ok += s->ok; tot.non2xx += s->non2xx; tot.closed += s->closed;
        tot.timeout += s->timeout; tot.unsent += s->unsent;
        if (s->proto[0]) { memcpy(tot.proto, s->proto, sizeof tot.proto); memcpy(tot.cipher, s->cipher, sizeof tot.cipher); }
        memmove(samples_all + ns, samples_all + (size_t)k * max_samples, s->recorded * sizeof(uint32_t)); ns += s->recorded;
        memmove(lag_all + nl, lag_all + (size_t)k * max_samples, s->lagn * sizeof(uint32_t)); nl += s->lagn;
    }
    qsort(samples_all, ns, sizeof(uint32_t), cmp_u32);
    qsort(lag_all, nl, sizeof(uint32_t), cmp_u32);
    double achieved = secs > warmup ? ns / (secs - warmup) : 0;
    printf("openloop: %d conns (%ld open, %ld failed to open in %.2f s), %.0f req/s scheduled for %.1f s (%.1f s warm-up), %d procs, %s %s\n",
           conns_total, open, open_failed, open_secs, rate, secs, warmup, procs, tot.proto[0] ? tot.proto : "-", tot.cipher[0] ? tot.cipher : "-");
    printf("  recorded %ld responses (%.0f/s); latency from scheduled send time, ms:\n", ns, achieved);
    printf("    p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", pct(samples_all, ns, 50), pct(samples_all, ns, 90),
           pct(samples_all, ns, 99), pct(samples_all, ns, 99.9), ns ? samples_all[ns - 1] / 1000.0 : 0);
    printf("  client send lag p99 %.3f ms; errors: non2xx %ld, closed %ld, timeout %ld, unsent %ld\n",
           pct(lag_all, nl, 99), tot.non2xx, tot.closed, tot.timeout, tot.unsent);
    printf("RESULT open=%ld open_failed=%ld scheduled=%ld ok=%ld non2xx=%ld closed=%ld timeout=%ld unsent=%ld rate=%.1f "
           "p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f send_lag_p99_ms=%.3f secs=%.2f proto=%s cipher=%s\n",
           open, open_failed, tot.scheduled, tot.ok, tot.non2xx, tot.closed, tot.timeout, tot.unsent, achieved,
           pct(samples_all, ns, 50), pct(samples_all, ns, 90), pct(samples_all, ns, 99), pct(samples_all, ns, 99.9),
           ns ? samples_all[ns - 1] / 1000.0 : 0, pct(lag_all, nl, 99), wall, tot.proto[0] ? tot.proto : "-",
           tot.cipher[0] ? tot.cipher : "-");
    return 0;
}
