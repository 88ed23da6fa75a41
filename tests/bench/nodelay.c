/*
 * nodelay.c - LD_PRELOAD shim for tests/bench/run (NODELAY=1): sets TCP_NODELAY on every
 * socket the sample application accepts. The sample application (libevent evhttp) leaves
 * Nagle on, so on a keep-alive connection the tail of each reply can wait for the client's
 * delayed ACK (up to ~40 ms): that penalises keep-alive clients (curl, onesyncd) but not a
 * client that opens a new connection per request. Real servers (nginx, most frameworks) set
 * TCP_NODELAY. Build: cc -shared -fPIC -O2 -o nodelay.so nodelay.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <sys/socket.h>

static void
nodelay(int fd)
{
	int one = 1;

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int
accept(int s, struct sockaddr *a, socklen_t *l)
{
	static int (*real)(int, struct sockaddr *, socklen_t *);
	int fd;

	if (real == NULL)
		real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
	fd = real(s, a, l);
	nodelay(fd);
	return fd;
}

int
accept4(int s, struct sockaddr *a, socklen_t *l, int flags)
{
	static int (*real)(int, struct sockaddr *, socklen_t *, int);
	int fd;

	if (real == NULL)
		real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
	fd = real(s, a, l, flags);
	nodelay(fd);
	return fd;
}
