/*
 * Fetching the certificate an IPKIX CERT record points at: HTTP or HTTPS
 * only, bounded in time and size, since the URL comes from the network.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common.h"
#include "discover.h"

struct fetch_buf {
	unsigned char *data;
	size_t len;
	size_t max;
	int too_big;
};

static size_t fetch_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct fetch_buf *buf = arg;
	size_t n = size * nmemb;

	if (n > buf->max - buf->len) {
		buf->too_big = 1;
		return 0; /* makes curl stop with a write error */
	}
	memcpy(buf->data + buf->len, ptr, n);
	buf->len += n;
	return n;
}

/* Applies the limits that keep a hostile URL harmless. */
static CURLcode fetch_setup(CURL *curl, const char *url, int timeout,
                            struct fetch_buf *buf)
{
	CURLcode rc = CURLE_OK;

	if (rc == CURLE_OK)
		rc = curl_easy_setopt(curl, CURLOPT_URL, url);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR,
		                      "http,https");
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)timeout);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE,
		                      (curl_off_t)buf->max);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, fetch_write);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(curl, CURLOPT_WRITEDATA, buf);
	return rc;
}

enum p11mail_status p11m_fetch_url(const char *url, int timeout, size_t max,
                                   unsigned char **out, size_t *len)
{
	struct fetch_buf buf = {.max = max};
	enum p11mail_status st;
	CURL *curl = NULL;
	CURLcode rc;

	*out = NULL;
	*len = 0;
	buf.data = malloc(max > 0 ? max : 1);
	curl = curl_easy_init();
	if (buf.data == NULL || curl == NULL) {
		st = P11MAIL_ERR_NOMEM;
		goto out;
	}

	rc = fetch_setup(curl, url, timeout, &buf);
	if (rc == CURLE_OK)
		rc = curl_easy_perform(curl);
	if (buf.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		p11m_log(P11MAIL_LOG_WARNING,
		         "%s is larger than %zu bytes; ignored", url, max);
		st = P11MAIL_ERR_LIMIT;
		goto out;
	}
	if (rc != CURLE_OK) {
		p11m_log(P11MAIL_LOG_WARNING, "cannot fetch %s: %s", url,
		         curl_easy_strerror(rc));
		st = P11MAIL_ERR_DISCOVERY;
		goto out;
	}
	*out = buf.data;
	*len = buf.len;
	buf.data = NULL;
	st = P11MAIL_OK;
out:
	free(buf.data);
	curl_easy_cleanup(curl);
	return st;
}
