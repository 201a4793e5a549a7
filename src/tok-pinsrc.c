/*
 * Where a PIN comes from when the application does not give it: a PIN
 * file named by the URI, the controlling terminal with echo off, or a
 * pinentry program spoken to over the Assuan protocol.  Every buffer that
 * held a PIN is wiped before it is released.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "common.h"
#include "tok-internal.h"

#define LINE_MAX_LEN 1024

CK_RV tok_pin_from_file(const char *source, char *buf, size_t size)
{
	const char *path = source;
	size_t len = 0;
	ssize_t n;
	struct stat sb;
	char c;
	int fd;

	if (strncmp(path, "file://", 7) == 0)
		path += 7;
	else if (strncmp(path, "file:", 5) == 0)
		path += 5;
	if (path[0] != '/' && strchr(source, ':') != NULL && path == source)
		return tok_fail(CKR_ARGUMENTS_BAD, TOK_DETAIL_URI,
		                "pin-source %s is not a file", source);

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return tok_fail(CKR_FUNCTION_FAILED, TOK_DETAIL_PIN_SOURCE,
		                "cannot read the PIN file %s: %s", path,
		                strerror(errno));
	/* A PIN others can read is no secret: the file must be made private. */
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    (sb.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		close(fd);
		return tok_fail(CKR_FUNCTION_FAILED, TOK_DETAIL_PIN_SOURCE,
		                "refusing the PIN file %s: group or others can "
		                "read it (chmod 600 %s)",
		                path, path);
	}
	/* One byte at a time: nothing past the first line is read. */
	while ((n = read(fd, &c, 1)) == 1 && c != '\n' && c != '\r') {
		if (len + 1 >= size) {
			len = size;
			break;
		}
		buf[len++] = c;
	}
	close(fd);
	c = 0;
	if (len >= size) {
		p11mail_wipe(buf, size);
		return tok_fail(CKR_PIN_LEN_RANGE, TOK_DETAIL_NONE,
		                "the PIN in %s is too long", path);
	}
	buf[len] = '\0';
	if (n < 0 || len == 0)
		return tok_fail(CKR_FUNCTION_FAILED, TOK_DETAIL_PIN_SOURCE,
		                "the PIN file %s is empty or unreadable", path);
	return CKR_OK;
}

/*
 * Copies a label the token chose into out with its control characters
 * (C0, DEL and UTF-8 encoded C1) as '?': a hostile label must not move
 * the cursor or rewrite the prompt it appears in.
 */
static const char *shown_label(const char *in, char *out, size_t size)
{
	const unsigned char *p = (const unsigned char *)(in ? in : "");
	size_t len = 0;

	for (; *p != '\0' && len + 1 < size; p++) {
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			out[len++] = '?';
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			out[len++] = '?';
		} else {
			out[len++] = (char)*p;
		}
	}
	out[len] = '\0';
	return out;
}

static void describe(const struct tok_pin_request *req, char *text, size_t size)
{
	char key[80], token[80], serial[40];

	shown_label(req->key_label, key, sizeof(key));
	shown_label(req->token_label, token, sizeof(token));
	shown_label(req->token_serial, serial, sizeof(serial));
	if (req->context_specific)
		snprintf(text, size, "PIN for the key %s on the token %s%s",
		         key, token,
		         req->count_low ? " (tries are running low)" : "");
	else
		snprintf(text, size, "PIN for the token %s (serial %s)%s",
		         token, serial,
		         req->count_low ? " (tries are running low)" : "");
}

CK_RV tok_pin_from_tty(const struct tok_pin_request *req, char *buf,
                       size_t size)
{
	struct termios saved, quiet;
	char prompt[256];
	size_t len = 0;
	CK_RV rv = CKR_OK;
	ssize_t n;
	int fd, over = 0;
	char c;

	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return CKR_DEVICE_ERROR;
	if (tcgetattr(fd, &saved) != 0) {
		close(fd);
		return CKR_DEVICE_ERROR;
	}
	quiet = saved;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;

	describe(req, prompt, sizeof(prompt) - 2);
	strcat(prompt, ": ");
	if (write(fd, prompt, strlen(prompt)) < 0 ||
	    tcsetattr(fd, TCSAFLUSH, &quiet) != 0) {
		close(fd);
		return CKR_DEVICE_ERROR;
	}
	/* The whole line is read, so that an over-long one is seen. */
	while ((n = read(fd, &c, 1)) == 1 && c != '\n') {
		if (len + 1 < size)
			buf[len++] = c;
		else
			over = 1;
	}
	c = 0;
	buf[len] = '\0';
	tcsetattr(fd, TCSAFLUSH, &saved);
	if (write(fd, "\n", 1) < 0)
		rv = CKR_DEVICE_ERROR;
	close(fd);
	/* A line cut by end of input was not confirmed with Enter. */
	if (n != 1 || len == 0)
		rv = CKR_FUNCTION_CANCELED;
	else if (over)
		rv = CKR_PIN_LEN_RANGE;
	if (rv != CKR_OK)
		p11mail_wipe(buf, size);
	return rv;
}

/* Reads one Assuan line into line (NUL-terminated, no newline). */
static int read_line(int fd, char *line, size_t size)
{
	size_t len = 0;
	char c;

	while (read(fd, &c, 1) == 1) {
		if (c == '\n') {
			line[len] = '\0';
			return 0;
		}
		if (len + 1 < size)
			line[len++] = c;
	}
	line[len] = '\0';
	return -1;
}

/* Sends cmd and waits for OK; 0 on OK. */
static int assuan_cmd(int in, int out, const char *cmd, char *line, size_t size)
{
	if (write(out, cmd, strlen(cmd)) < 0)
		return -1;
	do {
		if (read_line(in, line, size) != 0)
			return -1;
	} while (line[0] == '#' || strncmp(line, "S ", 2) == 0);
	return strncmp(line, "OK", 2) == 0 ? 0 : -1;
}

static void assuan_escape(const char *in, char *out, size_t size)
{
	size_t len = 0;

	for (; *in != '\0' && len + 4 < size; in++) {
		unsigned char c = (unsigned char)*in;

		if (c < 0x20 || c == '%')
			len += (size_t)snprintf(out + len, size - len, "%%%02X",
			                        c);
		else
			out[len++] = (char)c;
	}
	out[len] = '\0';
}

int tok_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes a "D ..." data line into buf; -1 when it does not fit. */
static int assuan_unescape(const char *in, char *buf, size_t size)
{
	size_t len = 0;

	for (; *in != '\0'; in++) {
		char c = *in;

		if (c == '%' && tok_hex_digit(in[1]) >= 0 &&
		    tok_hex_digit(in[2]) >= 0) {
			c = (char)(tok_hex_digit(in[1]) * 16 +
			           tok_hex_digit(in[2]));
			in += 2;
		}
		if (len + 1 >= size)
			return -1;
		buf[len++] = c;
	}
	buf[len] = '\0';
	return 0;
}

static pid_t spawn(const char *program, int *to, int *from)
{
	int a[2], b[2];
	pid_t pid;

	if (pipe2(a, O_CLOEXEC) != 0)
		return -1;
	if (pipe2(b, O_CLOEXEC) != 0) {
		close(a[0]);
		close(a[1]);
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		/* Its complaints are not ours to print. */
		dup2(a[0], 0);
		dup2(b[1], 1);
		if (null >= 0)
			dup2(null, 2);
		execlp(program, program, (char *)NULL);
		_exit(127);
	}
	close(a[0]);
	close(b[1]);
	if (pid < 0) {
		close(a[1]);
		close(b[0]);
		return -1;
	}
	*to = a[1];
	*from = b[0];
	return pid;
}

/* Runs the GETPIN exchange on an open connection. */
static CK_RV pinentry_talk(int to, int from, const struct tok_pin_request *req,
                           char *buf, size_t size)
{
	char line[LINE_MAX_LEN], text[256], esc[512], cmd[600];
	CK_RV rv = CKR_FUNCTION_CANCELED;
	int got = 0;

	if (read_line(from, line, sizeof(line)) != 0 ||
	    strncmp(line, "OK", 2) != 0)
		return CKR_DEVICE_ERROR;
	describe(req, text, sizeof(text));
	assuan_escape(text, esc, sizeof(esc));
	snprintf(cmd, sizeof(cmd), "SETDESC %s\n", esc);
	if (assuan_cmd(from, to, cmd, line, sizeof(line)) != 0 ||
	    assuan_cmd(from, to, "SETPROMPT PIN:\n", line, sizeof(line)) != 0)
		return CKR_DEVICE_ERROR;

	if (write(to, "GETPIN\n", 7) < 0)
		return CKR_DEVICE_ERROR;
	while (read_line(from, line, sizeof(line)) == 0) {
		if (strncmp(line, "D ", 2) == 0) {
			got = assuan_unescape(line + 2, buf, size) == 0 &&
			                      strlen(line) + 1 < sizeof(line)
			              ? 1
			              : -1;
			continue;
		}
		if (line[0] == '#' || strncmp(line, "S ", 2) == 0)
			continue;
		if (strncmp(line, "OK", 2) == 0 && got > 0 && buf[0] != '\0')
			rv = CKR_OK;
		else if (got < 0)
			rv = CKR_PIN_LEN_RANGE;
		break;
	}
	p11mail_wipe(line, sizeof(line));
	if (write(to, "BYE\n", 4) == 4)
		(void)read_line(from, line, sizeof(line));
	return rv;
}

CK_RV tok_pin_from_pinentry(const char *program,
                            const struct tok_pin_request *req, char *buf,
                            size_t size)
{
	struct sigaction ign, old;
	int to = -1, from = -1, status;
	pid_t pid;
	CK_RV rv;

	/* A pinentry that dies early must not kill us with SIGPIPE. */
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ign, &old);

	pid = spawn(program, &to, &from);
	if (pid < 0) {
		sigaction(SIGPIPE, &old, NULL);
		return tok_fail(CKR_FUNCTION_FAILED, TOK_DETAIL_PIN_SOURCE,
		                "cannot start the pinentry program %s: %s",
		                program, strerror(errno));
	}
	rv = pinentry_talk(to, from, req, buf, size);
	close(to);
	close(from);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	sigaction(SIGPIPE, &old, NULL);
	if (rv != CKR_OK)
		p11mail_wipe(buf, size);
	if (rv == CKR_DEVICE_ERROR)
		rv = tok_fail(CKR_FUNCTION_FAILED, TOK_DETAIL_PIN_SOURCE,
		              "the pinentry program %s did not answer the "
		              "Assuan protocol",
		              program);
	return rv;
}
