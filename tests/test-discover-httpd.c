/*
 * A minimal HTTP/1.0 server for the IPKIX tests: serves the given files by
 * their base names on 127.0.0.1, on a port the kernel picks and writes to
 * PORTFILE.  One request at a time, until it is killed.
 *   test-discover-httpd PORTFILE FILE...
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int listen_loopback(const char *portfile)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	FILE *f;
	int fd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(fd, 8) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
		return -1;
	f = fopen(portfile, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "%u\n", (unsigned)ntohs(sa.sin_port));
	return fclose(f) == 0 ? fd : -1;
}

/* Finds the file whose base name the request path names. */
static const char *lookup(char **files, int count, const char *path)
{
	for (int i = 0; i < count; i++) {
		const char *base = strrchr(files[i], '/');

		base = base != NULL ? base + 1 : files[i];
		if (path[0] == '/' && strcmp(path + 1, base) == 0)
			return files[i];
	}
	return NULL;
}

static void serve(int fd, char **files, int count)
{
	char req[1024], path[512], buf[4096];
	const char *file;
	ssize_t n;
	size_t got;
	FILE *f;

	n = read(fd, req, sizeof(req) - 1);
	if (n <= 0)
		return;
	req[n] = '\0';
	if (sscanf(req, "GET %511s", path) != 1 ||
	    (file = lookup(files, count, path)) == NULL ||
	    (f = fopen(file, "rb")) == NULL) {
		dprintf(fd,
		        "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
		return;
	}
	dprintf(fd, "HTTP/1.0 200 OK\r\nContent-Type: "
	            "application/pkix-cert\r\n\r\n");
	while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
		if (write(fd, buf, got) != (ssize_t)got)
			break;
	fclose(f);
}

int main(int argc, char **argv)
{
	int lfd;

	if (argc < 3) {
		fprintf(stderr, "usage: %s PORTFILE FILE...\n", argv[0]);
		return 2;
	}
	lfd = listen_loopback(argv[1]);
	if (lfd < 0) {
		perror("test-discover-httpd");
		return 1;
	}
	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			continue;
		serve(fd, argv + 2, argc - 2);
		close(fd);
	}
}
