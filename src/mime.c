/* MIME through GMime 3; see mime.h. */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "mime.h"

static pthread_once_t mime_once = PTHREAD_ONCE_INIT;

static void mime_init_once(void)
{
	g_mime_init();
}

void mime_init(void)
{
	pthread_once(&mime_once, mime_init_once);
}

struct walk {
	const struct p11mail_smime_limits *limits;
	size_t parts;
	enum p11mail_status st;
};

static int headers_within(GMimeObject *obj, size_t max)
{
	GMimeHeaderList *list = g_mime_object_get_header_list(obj);
	int n = list != NULL ? g_mime_header_list_get_count(list) : 0;

	for (int i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(list, i);
		const char *raw = g_mime_header_get_raw_value(h);

		if (raw != NULL && strlen(raw) > max)
			return 0;
	}
	return 1;
}

/* Walks the tree, counting parts and depth; stops at the first bound. */
static void walk_tree(GMimeObject *obj, size_t depth, struct walk *w)
{
	if (w->st != P11MAIL_OK)
		return;
	if (depth > w->limits->max_depth) {
		p11m_log(P11MAIL_LOG_ERROR, "MIME nesting deeper than %zu",
		         w->limits->max_depth);
		w->st = P11MAIL_ERR_LIMIT;
		return;
	}
	if (++w->parts > w->limits->max_parts) {
		p11m_log(P11MAIL_LOG_ERROR, "more than %zu MIME parts",
		         w->limits->max_parts);
		w->st = P11MAIL_ERR_LIMIT;
		return;
	}
	if (!headers_within(obj, w->limits->max_header)) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "a header field is longer than %zu bytes",
		         w->limits->max_header);
		w->st = P11MAIL_ERR_LIMIT;
		return;
	}
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		int n = g_mime_multipart_get_count(mp);

		for (int i = 0; i < n; i++)
			walk_tree(g_mime_multipart_get_part(mp, i), depth + 1,
			          w);
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *inner = g_mime_message_part_get_message(
		        GMIME_MESSAGE_PART(obj));

		if (inner != NULL)
			walk_tree(g_mime_message_get_mime_part(inner),
			          depth + 1, w);
	}
}

/* Parses stream (consumed) within the limits but for the size. */
static enum p11mail_status
parse_stream(GMimeStream *stream, const struct p11mail_smime_limits *limits,
             GMimeMessage **out)
{
	GMimeParser *parser = NULL;
	GMimeMessage *msg = NULL;
	struct walk w = {limits, 0, P11MAIL_OK};

	parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	msg = g_mime_parser_construct_message(parser, NULL);
	if (msg == NULL || g_mime_message_get_mime_part(msg) == NULL) {
		p11m_log(P11MAIL_LOG_ERROR, "input is not a MIME message");
		w.st = P11MAIL_ERR_FORMAT;
		goto out;
	}
	if (!headers_within(GMIME_OBJECT(msg), limits->max_header)) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "a header field is longer than %zu bytes",
		         limits->max_header);
		w.st = P11MAIL_ERR_LIMIT;
		goto out;
	}
	walk_tree(g_mime_message_get_mime_part(msg), 0, &w);
	if (w.st == P11MAIL_OK) {
		*out = msg;
		msg = NULL;
	}

out:
	if (msg != NULL)
		g_object_unref(msg);
	g_object_unref(parser);
	g_object_unref(stream);
	return w.st;
}

static enum p11mail_status too_large(size_t max)
{
	p11m_log(P11MAIL_LOG_ERROR, "message larger than %zu bytes", max);
	return P11MAIL_ERR_LIMIT;
}

enum p11mail_status mime_parse(const unsigned char *buf, size_t len,
                               const struct p11mail_smime_limits *limits,
                               GMimeMessage **out)
{
	*out = NULL;
	mime_init();
	if (len > limits->max_size)
		return too_large(limits->max_size);
	return parse_stream(
	        g_mime_stream_mem_new_with_buffer((const char *)buf, len),
	        limits, out);
}

enum p11mail_status mime_parse_fd(int fd, size_t max_size,
                                  const struct p11mail_smime_limits *limits,
                                  GMimeMessage **out)
{
	struct stat sb;
	int copy;

	*out = NULL;
	mime_init();
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		p11m_log(P11MAIL_LOG_ERROR, "the input is not a regular file");
		return P11MAIL_ERR_ARGS;
	}
	if ((uintmax_t)sb.st_size > max_size)
		return too_large(max_size);
	copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (copy < 0 || lseek(copy, 0, SEEK_SET) != 0) {
		if (copy >= 0)
			close(copy);
		return P11MAIL_ERR_IO;
	}
	/* the parts stay in the file: GMime keeps only their offsets */
	return parse_stream(g_mime_stream_fs_new(copy), limits, out);
}

static int is_text(GMimeObject *obj)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);

	return ct == NULL || g_mime_content_type_is_type(ct, "text", "*");
}

/*
 * True when the content of part (not transfer-encoded) is valid UTF-8,
 * read a piece at a time: a large part is never held in memory.
 */
static int content_is_utf8(GMimePart *part)
{
	GMimeDataWrapper *w = g_mime_part_get_content(part);
	GMimeStream *st = w != NULL ? g_mime_data_wrapper_get_stream(w) : NULL;
	char buf[8192 + 4];
	size_t carry = 0, len;
	const gchar *end;
	ssize_t n;
	int ok = 1;

	if (st == NULL || g_mime_stream_reset(st) != 0)
		return 0;
	while (ok && !g_mime_stream_eos(st)) {
		n = g_mime_stream_read(st, buf + carry, 8192);
		if (n <= 0) {
			ok = n == 0;
			break;
		}
		len = carry + (size_t)n;
		carry = 0;
		if (g_utf8_validate(buf, (gssize)len, &end))
			continue;
		/* a sequence cut at the end of the piece waits for the next */
		carry = len - (size_t)(end - buf);
		if (carry < 4 && g_utf8_get_char_validated(
		                         end, (gssize)carry) == (gunichar)-2)
			memmove(buf, end, carry);
		else
			ok = 0;
	}
	g_mime_stream_reset(st);
	return ok && carry == 0;
}

/*
 * A text part without Content-Type is US-ASCII to its receivers (RFC
 * 2045): once its 8-bit UTF-8 is re-encoded, it is labelled as such.
 */
static void label_utf8(GMimePart *part)
{
	GMimeContentType *ct;

	if (g_mime_object_get_header(GMIME_OBJECT(part), "Content-Type") !=
	            NULL ||
	    !content_is_utf8(part))
		return;
	ct = g_mime_content_type_parse(NULL, "text/plain; charset=utf-8");
	if (ct == NULL)
		return;
	g_mime_object_set_content_type(GMIME_OBJECT(part), ct);
	g_object_unref(ct);
}

static void prepare_leaf(GMimePart *part)
{
	GMimeContentEncoding enc = g_mime_part_get_content_encoding(part);

	if (enc == GMIME_CONTENT_ENCODING_BASE64 ||
	    enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
	    enc == GMIME_CONTENT_ENCODING_UUENCODE)
		return;

	/* Only re-encode what is not already 7-bit safe as it stands. */
	if (g_mime_part_get_best_content_encoding(
	            part, GMIME_ENCODING_CONSTRAINT_7BIT) ==
	    GMIME_CONTENT_ENCODING_7BIT) {
		if (enc != GMIME_CONTENT_ENCODING_DEFAULT &&
		    enc != GMIME_CONTENT_ENCODING_7BIT)
			g_mime_part_set_content_encoding(
			        part, GMIME_CONTENT_ENCODING_7BIT);
		return;
	}

	/*
	 * base64 would freeze the local LF line ends into the signed text;
	 * quoted-printable keeps lines, which the CRLF output canonicalizes.
	 */
	if (is_text(GMIME_OBJECT(part)))
		label_utf8(part);
	g_mime_part_set_content_encoding(
	        part, is_text(GMIME_OBJECT(part))
	                      ? GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE
	                      : GMIME_CONTENT_ENCODING_BASE64);
}

void mime_prepare_for_signing(GMimeObject *entity)
{
	if (GMIME_IS_MULTIPART(entity)) {
		GMimeMultipart *mp = GMIME_MULTIPART(entity);
		int n = g_mime_multipart_get_count(mp);

		/* a signed part must stay byte-for-byte as it is */
		if (GMIME_IS_MULTIPART_SIGNED(entity))
			return;
		for (int i = 0; i < n; i++)
			mime_prepare_for_signing(
			        g_mime_multipart_get_part(mp, i));
	} else if (GMIME_IS_MESSAGE_PART(entity)) {
		GMimeMessage *inner = g_mime_message_part_get_message(
		        GMIME_MESSAGE_PART(entity));

		if (inner != NULL)
			mime_prepare_for_signing(
			        g_mime_message_get_mime_part(inner));
	} else if (GMIME_IS_PART(entity)) {
		prepare_leaf(GMIME_PART(entity));
	}
}

static GMimeFormatOptions *crlf_options(void)
{
	GMimeFormatOptions *o = g_mime_format_options_new();

	g_mime_format_options_set_newline_format(o, GMIME_NEWLINE_FORMAT_DOS);
	return o;
}

/* Copies a GMime memory stream's bytes into a malloc'ed buffer. */
static enum p11mail_status stream_bytes(GMimeStreamMem *mem,
                                        unsigned char **out, size_t *out_len)
{
	GByteArray *arr = g_mime_stream_mem_get_byte_array(mem);
	unsigned char *copy = malloc(arr->len + 1);

	if (copy == NULL)
		return P11MAIL_ERR_NOMEM;
	memcpy(copy, arr->data, arr->len);
	copy[arr->len] = '\0';
	*out = copy;
	*out_len = arr->len;
	return P11MAIL_OK;
}

/* Writes obj to sink through a LF-to-CRLF filter; P11MAIL_OK or ERR_IO. */
static enum p11mail_status write_crlf(GMimeObject *obj, GMimeStream *sink)
{
	GMimeFormatOptions *opts = crlf_options();
	GMimeStream *filtered = g_mime_stream_filter_new(sink);
	GMimeFilter *crlf = g_mime_filter_unix2dos_new(FALSE);
	enum p11mail_status st = P11MAIL_ERR_IO;

	g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), crlf);
	g_object_unref(crlf);
	if (g_mime_object_write_to_stream(obj, opts, filtered) >= 0 &&
	    g_mime_stream_flush(filtered) >= 0)
		st = P11MAIL_OK;
	g_object_unref(filtered);
	g_mime_format_options_free(opts);
	return st;
}

enum p11mail_status mime_to_crlf(GMimeObject *obj, unsigned char **out,
                                 size_t *out_len)
{
	GMimeStream *mem = g_mime_stream_mem_new();
	enum p11mail_status st;

	*out = NULL;
	*out_len = 0;
	st = write_crlf(obj, mem);
	if (st == P11MAIL_OK)
		st = stream_bytes(GMIME_STREAM_MEM(mem), out, out_len);
	else
		st = P11MAIL_ERR_FORMAT;
	g_object_unref(mem);
	return st;
}

enum p11mail_status mime_to_crlf_fd(GMimeObject *obj, int fd)
{
	GMimeStream *fs;
	enum p11mail_status st;
	int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);

	if (copy < 0)
		return P11MAIL_ERR_IO;
	/*
	 * A pipe stream writes straight through and its flush does nothing:
	 * a file stream's flush is an fsync, which the temporary files this
	 * writes do not need and which costs more than the signature.
	 */
	fs = g_mime_stream_pipe_new(copy);
	st = write_crlf(obj, fs);
	g_object_unref(fs);
	return st;
}

static int is_content_header(const char *name)
{
	return strncasecmp(name, "Content-", 8) == 0 ||
	       strcasecmp(name, "MIME-Version") == 0;
}

enum p11mail_status mime_write_outer_headers(GMimeMessage *msg, BIO *out)
{
	GMimeHeaderList *list =
	        g_mime_object_get_header_list(GMIME_OBJECT(msg));
	int n = g_mime_header_list_get_count(list);
	enum p11mail_status st = P11MAIL_OK;

	for (int i = 0; i < n && st == P11MAIL_OK; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(list, i);
		const char *name = g_mime_header_get_name(h);
		const char *raw = g_mime_header_get_raw_value(h);
		unsigned char *crlf = NULL;
		size_t crlf_len = 0;

		if (is_content_header(name) || raw == NULL)
			continue;
		st = mime_crlf((const unsigned char *)raw, strlen(raw), &crlf,
		               &crlf_len);
		if (st != P11MAIL_OK)
			break;
		if (BIO_printf(out, "%s:", name) <= 0 ||
		    BIO_write(out, crlf, (int)crlf_len) != (int)crlf_len)
			st = P11MAIL_ERR_IO;
		/* a raw value normally ends its own line */
		if (st == P11MAIL_OK &&
		    (crlf_len < 2 || crlf[crlf_len - 1] != '\n'))
			if (BIO_puts(out, "\r\n") <= 0)
				st = P11MAIL_ERR_IO;
		free(crlf);
	}
	return st;
}

static int count_headers(GMimeObject *obj, const char *name)
{
	GMimeHeaderList *list = g_mime_object_get_header_list(obj);
	int n = g_mime_header_list_get_count(list), count = 0;

	for (int i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(list, i);

		if (strcasecmp(g_mime_header_get_name(h), name) == 0)
			count++;
	}
	return count;
}

/* The single mailbox of a list; -1 when several or a group, 0 for none. */
static int single_mailbox(InternetAddressList *list, const char **addr)
{
	InternetAddress *a;

	*addr = NULL;
	if (list == NULL || internet_address_list_length(list) == 0)
		return 0;
	if (internet_address_list_length(list) > 1)
		return -1;
	a = internet_address_list_get_address(list, 0);
	if (!INTERNET_ADDRESS_IS_MAILBOX(a))
		return -1;
	*addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
	return 1;
}

enum p11mail_status mime_sender(GMimeMessage *msg, char **out)
{
	const char *from = NULL, *sender = NULL;
	int nfrom, nsender;

	*out = NULL;
	if (count_headers(GMIME_OBJECT(msg), "From") > 1 ||
	    count_headers(GMIME_OBJECT(msg), "Sender") > 1) {
		p11m_log(P11MAIL_LOG_ERROR, "the message has several From "
		                            "or Sender fields");
		return P11MAIL_ERR_FORMAT;
	}
	nfrom = single_mailbox(g_mime_message_get_from(msg), &from);
	nsender = single_mailbox(g_mime_message_get_sender(msg), &sender);
	if (nfrom < 0 || nsender < 0) {
		p11m_log(P11MAIL_LOG_ERROR,
		         "the message has several From or Sender addresses");
		return P11MAIL_ERR_FORMAT;
	}
	if (sender != NULL || from != NULL) {
		*out = strdup(sender != NULL ? sender : from);
		if (*out == NULL)
			return P11MAIL_ERR_NOMEM;
	}
	return P11MAIL_OK;
}

static void append_list(GString *s, InternetAddressList *list)
{
	int n = list != NULL ? internet_address_list_length(list) : 0;

	for (int i = 0; i < n; i++) {
		InternetAddress *a = internet_address_list_get_address(list, i);

		if (!INTERNET_ADDRESS_IS_MAILBOX(a))
			continue;
		if (s->len > 0)
			g_string_append_c(s, ',');
		g_string_append(s, internet_address_mailbox_get_addr(
		                           INTERNET_ADDRESS_MAILBOX(a)));
	}
}

char *mime_recipients(GMimeMessage *msg)
{
	GString *s = g_string_new("");
	char *copy;

	append_list(s, g_mime_message_get_to(msg));
	append_list(s, g_mime_message_get_cc(msg));
	copy = strdup(s->str);
	g_string_free(s, TRUE);
	return copy;
}

int mime_is_multipart_signed(GMimeObject *obj)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	const char *protocol;

	if (ct == NULL ||
	    !g_mime_content_type_is_type(ct, "multipart", "signed"))
		return 0;
	protocol = g_mime_content_type_get_parameter(ct, "protocol");
	return protocol != NULL &&
	       (strcasecmp(protocol, "application/pkcs7-signature") == 0 ||
	        strcasecmp(protocol, "application/x-pkcs7-signature") == 0);
}

int mime_is_pkcs7_mime(GMimeObject *obj, const char **smime_type)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	const char *type;

	*smime_type = "";
	if (ct == NULL || !GMIME_IS_PART(obj))
		return 0;
	if (!g_mime_content_type_is_type(ct, "application", "pkcs7-mime") &&
	    !g_mime_content_type_is_type(ct, "application", "x-pkcs7-mime"))
		return 0;
	type = g_mime_content_type_get_parameter(ct, "smime-type");
	if (type != NULL)
		*smime_type = type;
	return 1;
}

int mime_is_pkcs7_signature(GMimeObject *obj)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);

	return ct != NULL && GMIME_IS_PART(obj) &&
	       (g_mime_content_type_is_type(ct, "application",
	                                    "pkcs7-signature") ||
	        g_mime_content_type_is_type(ct, "application",
	                                    "x-pkcs7-signature"));
}

enum p11mail_status mime_part_content(GMimeObject *obj, size_t max,
                                      unsigned char **out, size_t *out_len)
{
	GMimeDataWrapper *content;
	GMimeStream *mem = NULL;
	enum p11mail_status st = P11MAIL_ERR_FORMAT;

	*out = NULL;
	*out_len = 0;
	if (!GMIME_IS_PART(obj))
		return P11MAIL_ERR_FORMAT;
	content = g_mime_part_get_content(GMIME_PART(obj));
	if (content == NULL)
		return P11MAIL_ERR_FORMAT;
	mem = g_mime_stream_mem_new();
	if (g_mime_data_wrapper_write_to_stream(content, mem) < 0)
		goto out;
	if (g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem))->len >
	    max) {
		st = P11MAIL_ERR_LIMIT;
		goto out;
	}
	st = stream_bytes(GMIME_STREAM_MEM(mem), out, out_len);

out:
	g_object_unref(mem);
	return st;
}

enum p11mail_status mime_crlf(const unsigned char *in, size_t len,
                              unsigned char **out, size_t *out_len)
{
	size_t extra = 0, j = 0;
	unsigned char *buf;

	*out = NULL;
	*out_len = 0;
	for (size_t i = 0; i < len; i++)
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			extra++;
	buf = malloc(len + extra + 1);
	if (buf == NULL)
		return P11MAIL_ERR_NOMEM;
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			buf[j++] = '\r';
		buf[j++] = in[i];
	}
	buf[j] = '\0';
	*out = buf;
	*out_len = j;
	return P11MAIL_OK;
}
