/*
 * vicc: a virtual smart card for the vpcd reader driver (vsmartcard-vpcd).
 * It connects to vpcd on 127.0.0.1:PORT while the state file says
 * "inserted" and disconnects when it says anything else (or is missing),
 * which pcscd and OpenSC see as card insertion and removal.  The card
 * answers reset with a fixed ATR and every APDU with 6D00 (instruction not
 * supported): enough for reader and presence checks, not a PKCS#11 token.
 *
 *   vicc PORT STATEFILE
 *
 * vpcd framing: every message is a 2-byte big-endian length and a payload;
 * a 1-byte payload is a control code (0 power off, 1 power on, 2 reset,
 * 4 get ATR, the last answered with the ATR), anything longer is an APDU.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CTRL_ATR 4
#define POLL_MS  50

/* A plausible ATR: T=1, historical bytes "p11mail". */
static const unsigned char atr[] = {0x3b, 0x87, 0x80, 0x01, 'p', '1',
                                    '1',  'm',  'a',  'i',  'l', 0x69};
static const unsigned char sw_ins_not_supported[] = {0x6d, 0x00};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Whether the state file currently says "inserted". */
static int wanted(const char *state)
{
	char buf[16] = "";
	FILE *f = fopen(state, "r");

	if (f == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	return strncmp(buf, "inserted", 8) == 0;
}

static int connect_vpcd(unsigned short port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int read_all(int fd, unsigned char *buf, size_t len)
{
	while (len > 0) {
		ssize_t r = read(fd, buf, len);

		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			return -1;
		}
		buf += r;
		len -= (size_t)r;
	}
	return 0;
}

static int send_msg(int fd, const unsigned char *data, size_t len)
{
	unsigned char msg[2 + 64];

	msg[0] = (unsigned char)(len >> 8);
	msg[1] = (unsigned char)len;
	memcpy(msg + 2, data, len);
	return send(fd, msg, len + 2, MSG_NOSIGNAL) == (ssize_t)(len + 2) ? 0
	                                                                  : -1;
}

/* Answers one message from vpcd; returns -1 when the link is gone. */
static int serve_one(int fd)
{
	unsigned char hdr[2], body[65536];
	size_t len;

	if (read_all(fd, hdr, 2) != 0)
		return -1;
	len = ((size_t)hdr[0] << 8) | hdr[1];
	if (read_all(fd, body, len) != 0)
		return -1;
	if (len == 1)
		return body[0] == CTRL_ATR ? send_msg(fd, atr, sizeof(atr)) : 0;
	return send_msg(fd, sw_ins_not_supported, 2);
}

int main(int argc, char **argv)
{
	struct pollfd pfd;
	unsigned short port;
	int fd = -1;

	if (argc != 3 || atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535) {
		fprintf(stderr, "usage: vicc PORT STATEFILE\n");
		return 2;
	}
	port = (unsigned short)atoi(argv[1]);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	while (!stop) {
		int want = wanted(argv[2]);

		if (want && fd < 0)
			fd = connect_vpcd(port);
		if (!want && fd >= 0) {
			close(fd);
			fd = -1;
		}
		if (fd < 0) {
			poll(NULL, 0, POLL_MS);
			continue;
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, POLL_MS) > 0 && serve_one(fd) != 0) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	return 0;
}
