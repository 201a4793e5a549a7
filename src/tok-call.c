/*
 * The thin layer every PKCS#11 call passes through: the trace of each call
 * and its result, and the per-thread sentence that explains a failure.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "tok-internal.h"

static _Thread_local char last_error[1024];
static _Thread_local CK_RV last_rv;
static _Thread_local enum tok_detail last_detail;

static const struct {
	CK_RV rv;
	const char *name;
} rv_names[] = {
        {CKR_OK, "CKR_OK"},
        {CKR_CANCEL, "CKR_CANCEL"},
        {CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
        {CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"},
        {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
        {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
        {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
        {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"},
        {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID"},
        {CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"},
        {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
        {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"},
        {CKR_ENCRYPTED_DATA_INVALID, "CKR_ENCRYPTED_DATA_INVALID"},
        {CKR_ENCRYPTED_DATA_LEN_RANGE, "CKR_ENCRYPTED_DATA_LEN_RANGE"},
        {CKR_FUNCTION_CANCELED, "CKR_FUNCTION_CANCELED"},
        {CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED"},
        {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
        {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
        {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
        {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"},
        {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
        {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"},
        {CKR_OPERATION_NOT_INITIALIZED, "CKR_OPERATION_NOT_INITIALIZED"},
        {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
        {CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"},
        {CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED"},
        {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
        {CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED"},
        {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
        {CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY"},
        {CKR_SIGNATURE_INVALID, "CKR_SIGNATURE_INVALID"},
        {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"},
        {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"},
        {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
        {CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED"},
        {CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED"},
        {CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"},
        {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
        {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED"},
        {CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID"},
        {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
        {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
        {CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED"},
};

const char *tok_rv_name(CK_RV rv)
{
	static _Thread_local char buf[32];
	size_t i;

	for (i = 0; i < P11M_ARRAY_SIZE(rv_names); i++)
		if (rv_names[i].rv == rv)
			return rv_names[i].name;
	snprintf(buf, sizeof(buf), "CKR_0x%lx", (unsigned long)rv);
	return buf;
}

CK_RV tok_traced(const char *fn, CK_RV rv)
{
	if (p11m_trace_enabled())
		p11m_trace("pkcs11", "%s -> %s", fn, tok_rv_name(rv));
	return rv;
}

CK_RV tok_fail(CK_RV rv, enum tok_detail detail, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	last_rv = rv;
	last_detail = detail;
	p11m_trace("token", "%s (%s)", last_error, tok_rv_name(rv));
	return rv;
}

/* True when the attribute name in [name, end) could carry a PIN. */
static int names_pin(const char *name, const char *end)
{
	const char *p;

	for (p = name; p + 3 <= end; p++)
		if (strncasecmp(p, "pin", 3) == 0)
			return 1;
	return 0;
}

const char *tok_uri_shown(const char *text, char *buf, size_t size)
{
	const char *p = text != NULL ? text : "";
	size_t used = 0;

	if (size == 0)
		return buf;
	buf[0] = '\0';
	while (*p != '\0' && *p != '?' && used + 1 < size) {
		size_t seg = strcspn(p, ";?");
		const char *eq = memchr(p, '=', seg);

		if (eq != NULL && names_pin(p, eq))
			snprintf(buf + used, size - used, "%.*s=***",
			         (int)(eq - p), p);
		else
			snprintf(buf + used, size - used, "%.*s", (int)seg, p);
		used = strlen(buf);
		p += seg;
		if (*p == ';' && used + 1 < size) {
			buf[used++] = ';';
			buf[used] = '\0';
			p++;
		}
	}
	if (*p == '?' && used + 1 < size)
		snprintf(buf + used, size - used, "?...");
	return buf;
}

void tok_clear_error(void)
{
	last_error[0] = '\0';
	last_rv = CKR_OK;
	last_detail = TOK_DETAIL_NONE;
}

const char *tok_last_error(void)
{
	return last_error;
}

int tok_rv_is_lost(CK_RV rv)
{
	switch (rv) {
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_OBJECT_HANDLE_INVALID:
	case CKR_KEY_HANDLE_INVALID:
	case CKR_USER_NOT_LOGGED_IN:
	case CKR_CRYPTOKI_NOT_INITIALIZED:
		return 1;
	default:
		return 0;
	}
}

/* The detail recorded with the same rv refines the mapping. */
static enum tok_detail detail_for(CK_RV rv)
{
	return rv == last_rv ? last_detail : TOK_DETAIL_NONE;
}

enum p11mail_status tok_status(CK_RV rv)
{
	enum tok_detail detail = detail_for(rv);

	if (detail == TOK_DETAIL_FINAL_TRY)
		return P11MAIL_ERR_PIN_FINAL_TRY;
	if (detail == TOK_DETAIL_CANCELLED)
		return P11MAIL_ERR_PIN_CANCELLED;
	if (detail == TOK_DETAIL_NO_TOKEN)
		return P11MAIL_ERR_NO_TOKEN;
	if (detail == TOK_DETAIL_REMOVED)
		return P11MAIL_ERR_TOKEN_REMOVED;
	if (detail == TOK_DETAIL_URI)
		return P11MAIL_ERR_URI;
	if (detail == TOK_DETAIL_MODULE)
		return P11MAIL_ERR_MODULE;
	if (detail == TOK_DETAIL_AMBIGUOUS)
		return P11MAIL_ERR_AMBIGUOUS;
	/* The token was not involved: the setting that names the source. */
	if (detail == TOK_DETAIL_PIN_SOURCE)
		return P11MAIL_ERR_CONFIG;

	switch (rv) {
	case CKR_OK:
		return P11MAIL_OK;
	case CKR_HOST_MEMORY:
		return P11MAIL_ERR_NOMEM;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
		return P11MAIL_ERR_PIN_INCORRECT;
	case CKR_PIN_LOCKED:
		return P11MAIL_ERR_PIN_LOCKED;
	case CKR_PIN_EXPIRED:
	case CKR_USER_PIN_NOT_INITIALIZED:
		return P11MAIL_ERR_PIN_EXPIRED;
	case CKR_FUNCTION_CANCELED:
	case CKR_CANCEL:
		return P11MAIL_ERR_PIN_CANCELLED;
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_TOKEN_NOT_RECOGNIZED:
		return P11MAIL_ERR_NO_TOKEN;
	case CKR_DEVICE_REMOVED:
		return P11MAIL_ERR_TOKEN_REMOVED;
	case CKR_KEY_HANDLE_INVALID:
		return P11MAIL_ERR_NO_KEY;
	case CKR_ARGUMENTS_BAD:
		return P11MAIL_ERR_ARGS;
	case CKR_MECHANISM_INVALID:
	case CKR_MECHANISM_PARAM_INVALID:
	case CKR_KEY_TYPE_INCONSISTENT:
	case CKR_KEY_FUNCTION_NOT_PERMITTED:
	case CKR_FUNCTION_NOT_SUPPORTED:
		return P11MAIL_ERR_MECHANISM;
	case CKR_ENCRYPTED_DATA_INVALID:
	case CKR_ENCRYPTED_DATA_LEN_RANGE:
		return P11MAIL_ERR_DECRYPT;
	case CKR_CRYPTOKI_NOT_INITIALIZED:
	case CKR_CRYPTOKI_ALREADY_INITIALIZED:
		return P11MAIL_ERR_MODULE;
	default:
		return P11MAIL_ERR_TOKEN;
	}
}
