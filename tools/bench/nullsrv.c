/* The canned-reply stub of `bijli bench dlms` (tools/bench/server_cost.py).

   It measures what the client and the kernel cost, so that the meter's own CPU per
   request is 1/rate(meter) - 1/rate(stub) when client, meter and stub are pinned to
   one CPU. It answers every whole request frame on any number of connections with
   the same bytes (the meter's own answer to that request, recorded by the bench),
   doing no protocol work at all: the floor a server cannot go under.

   usage: nullsrv PORT wrapper|hdlc REPLY-HEX
     wrapper: a frame is the IEC 62056-47 8-byte header and the length it announces;
     hdlc:    a frame is 0x7E, the 2-byte format field (type 3, 11-bit length),
              and length - 1 more octets up to the closing flag (IEC 62056-46).   */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 8192
#define MAXFD 65536

struct conn { unsigned char buf[BUF]; int have; };
static struct conn *conns[MAXFD];
static unsigned char reply[4096];
static int nreply, hdlc;

static int unhex(const char *h, unsigned char *out, int cap) {
  int n = 0;
  while (h[0] && h[1] && n < cap) { sscanf(h, "%2hhx", &out[n++]); h += 2; }
  return n;
}

/* bytes of the whole frame at the start of b, 0 if more are needed, -1 if not a frame */
static int frame_length(const unsigned char *b, int have) {
  if (!hdlc) {
    if (have < 8) return 0;
    return 8 + ((b[6] << 8) | b[7]);
  }
  if (have < 3) return 0;
  if (b[0] != 0x7E) return -1;
  return (((b[1] & 0x07) << 8) | b[2]) + 2;
}

static void drop(int ep, int fd) {
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
  free(conns[fd]);
  conns[fd] = NULL;
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: nullsrv PORT wrapper|hdlc REPLY-HEX\n"); return 2; }
  hdlc = strcmp(argv[2], "hdlc") == 0;
  nreply = unhex(argv[3], reply, sizeof reply);
  int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET; a.sin_port = htons(atoi(argv[1])); a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(ls, (void *)&a, sizeof a) || listen(ls, 1024)) { perror("bind"); return 1; }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, evs[256];
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == ls) {
        int s = accept(ls, NULL, NULL);
        if (s < 0) continue;
        if (s >= MAXFD) { close(s); continue; }
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conns[s] = calloc(1, sizeof(struct conn));
        ev.events = EPOLLIN; ev.data.fd = s;
        epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
        continue;
      }
      struct conn *c = conns[fd];
      int r = recv(fd, c->buf + c->have, BUF - c->have, 0);
      if (r <= 0) { drop(ep, fd); continue; }
      c->have += r;
      int used = 0, bad = 0;
      for (;;) {
        int len = frame_length(c->buf + used, c->have - used);
        if (len < 0 || len > BUF) { bad = 1; break; }
        if (len == 0 || c->have - used < len) break;
        used += len;
        if (send(fd, reply, nreply, 0) < 0) { bad = 1; break; }
      }
      if (bad) { drop(ep, fd); continue; }
      memmove(c->buf, c->buf + used, c->have - used);
      c->have -= used;
    }
  }
}
