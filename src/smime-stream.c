/*
 * Streaming helpers: private anonymous temporary files holding an
 * intermediate form of a message (canonical entity, CMS DER), and
 * copying such a file into a BIO, as is or as base64, in bounded chunks.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "smime.h"

/* 57 input bytes make one 76-character base64 line. */
#define B64_LINE_IN 57
#define CHUNK       (B64_LINE_IN * 1024)

static const char *tmp_dir(void)
{
	const char *dir = p11m_getenv("TMPDIR");

	return dir != NULL && dir[0] == '/' ? dir : "/tmp";
}

int smime_tmpfile(void)
{
	char path[PATH_MAX];
	const char *dir = tmp_dir();
	int fd;

#ifdef O_TMPFILE
	/* never linked anywhere: nothing is left behind, even on a crash */
	fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
#endif
	if (snprintf(path, sizeof(path), "%s/p11mail-XXXXXX", dir) >=
	    (int)sizeof(path))
		return -1;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "cannot make a temporary file in %s: %s", dir,
		         strerror(errno));
		return -1;
	}
	unlink(path);
	return fd;
}

/* Reads up to len bytes, retrying short reads; -1 on error. */
static ssize_t read_full(int fd, unsigned char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Feeds the whole file fd, from its start, to out in chunks. */
static enum p11mail_status copy_chunks(int fd, BIO *out, int base64)
{
	unsigned char *buf = NULL;
	enum p11mail_status st = P11MAIL_ERR_IO;
	ssize_t n;

	if (lseek(fd, 0, SEEK_SET) != 0)
		return P11MAIL_ERR_IO;
	buf = malloc(CHUNK);
	if (buf == NULL)
		return P11MAIL_ERR_NOMEM;
	while ((n = read_full(fd, buf, CHUNK)) > 0) {
		if (base64)
			st = smime_base64_crlf(buf, (size_t)n, out);
		else
			st = BIO_write(out, buf, (int)n) == (int)n
			             ? P11MAIL_OK
			             : P11MAIL_ERR_IO;
		if (st != P11MAIL_OK)
			goto out;
	}
	st = n < 0 ? P11MAIL_ERR_IO : P11MAIL_OK;

out:
	/* the chunks may hold plaintext */
	p11m_secure_free(buf, CHUNK);
	return st;
}

enum p11mail_status smime_copy_fd(int fd, BIO *out)
{
	return copy_chunks(fd, out, 0);
}

enum p11mail_status smime_base64_fd(int fd, BIO *out)
{
	return copy_chunks(fd, out, 1);
}

BIO *smime_fd_bio(int fd)
{
	if (lseek(fd, 0, SEEK_SET) != 0)
		return NULL;
	return BIO_new_fd(fd, BIO_NOCLOSE);
}

BIO *smime_out_bio(int fd)
{
	BIO *raw = BIO_new_fd(fd, BIO_NOCLOSE);
	BIO *buf = raw != NULL ? BIO_new(BIO_f_buffer()) : NULL;

	if (buf == NULL) {
		BIO_free(raw);
		return NULL;
	}
	return BIO_push(buf, raw);
}
