/* p11mail verify: check the signatures of a message and report each. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd-smime.h"

/* Where the report goes: stdout, or stderr when stdout carries content. */
static FILE *report_fp;

static const char verify_help[] =
        "Usage: p11mail verify [OPTIONS] [MESSAGE]\n"
        "Verify a signed message (multipart/signed, opaque signed-data or\n"
        "bare DER) read from MESSAGE or stdin.\n\n"
        "  -a, --anchor FILE   trust anchor (CA or single certificate); "
        "repeatable\n"
        "      --content FILE  write the signed content to FILE\n"
        "      --max-size N    take a message of up to N bytes (default 64 "
        "MiB)\n"
        "      --json          report as JSON on stdout\n\n"
        "Exit status: 0 valid and trusted, 3 valid but a signer is not "
        "trusted,\n4 invalid, not signed or cannot verify, 1 failure, 2 "
        "usage.\n";

static void json_string(const char *s)
{
	if (s == NULL) {
		fputs("null", report_fp);
		return;
	}
	fputc('"', report_fp);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(report_fp, "\\%c", c);
		else if (c < 0x20)
			fprintf(report_fp, "\\u%04x", c);
		else
			fputc(c, report_fp);
	}
	fputc('"', report_fp);
}

static const char *trust_name(enum p11mail_trust t)
{
	switch (t) {
	case P11MAIL_TRUST_TRUSTED:
		return "trusted";
	case P11MAIL_TRUST_NOT_TRUSTED:
		return "not-trusted";
	default:
		return "untrusted-chain";
	}
}

static const char *verdict_name(enum p11mail_verdict v)
{
	switch (v) {
	case P11MAIL_VERDICT_VALID:
		return "valid";
	case P11MAIL_VERDICT_NOT_TRUSTED:
		return "not-trusted";
	case P11MAIL_VERDICT_INVALID:
		return "invalid";
	default:
		return "unsigned";
	}
}

static int verdict_exit(enum p11mail_verdict v)
{
	switch (v) {
	case P11MAIL_VERDICT_VALID:
		return TOOL_EXIT_OK;
	case P11MAIL_VERDICT_NOT_TRUSTED:
		return TOOL_EXIT_UNTRUSTED;
	default:
		return TOOL_EXIT_INVALID;
	}
}

static void json_signer(const struct p11mail_signer *s)
{
	fputs("{\"addresses\":", report_fp);
	json_string(s->addresses);
	fputs(",\"subject\":", report_fp);
	json_string(s->subject);
	fputs(",\"fingerprint_sha256\":", report_fp);
	json_string(s->fingerprint);
	fprintf(report_fp,
	        ",\"valid\":%s,\"trust\":\"%s\",\"sender_match\":%s,",
	        s->valid ? "true" : "false", trust_name(s->trust),
	        s->sender_match ? "true" : "false");
	if (s->signing_time >= 0)
		fprintf(report_fp, "\"signing_time\":%" PRId64 ",",
		        s->signing_time);
	else
		fputs("\"signing_time\":null,", report_fp);
	fputs("\"problem\":", report_fp);
	json_string(s->problem);
	fputc('}', report_fp);
}

static void json_report(const struct p11mail_verify_result *r,
                        const char *extra)
{
	fprintf(report_fp, "{\"verdict\":\"%s\",\"exit\":%d,\"sender\":",
	        verdict_name(r->verdict), verdict_exit(r->verdict));
	json_string(r->sender);
	fputs(",\"signed_part\":", report_fp);
	json_string(r->signed_part);
	fprintf(report_fp,
	        ",\"opaque\":%s,\"problem\":", r->opaque ? "true" : "false");
	json_string(r->problem);
	fputs(",\"signers\":[", report_fp);
	for (size_t i = 0; i < r->signer_count; i++) {
		if (i > 0)
			fputc(',', report_fp);
		json_signer(&r->signers[i]);
	}
	fprintf(report_fp, "]%s}\n", extra != NULL ? extra : "");
}

static void text_signer(const struct p11mail_signer *s, int have_sender)
{
	const char *who = s->addresses != NULL && *s->addresses != '\0'
	                          ? s->addresses
	                          : (s->subject != NULL ? s->subject
	                                                : "an unknown signer");

	if (!s->valid)
		fprintf(report_fp, "Signed by %s: INVALID: %s\n", who,
		        s->problem != NULL ? s->problem : "cannot verify");
	else if (have_sender && !s->sender_match)
		fprintf(report_fp, "Signed by %s: valid signature, but %s\n",
		        who,
		        s->problem != NULL ? s->problem
		                           : "the sender is unknown");
	else if (s->trust != P11MAIL_TRUST_TRUSTED)
		fprintf(report_fp,
		        "Signed by %s: valid, signer NOT TRUSTED (%s); "
		        "fingerprint SHA-256 %s\n",
		        who, s->problem != NULL ? s->problem : "no anchor",
		        s->fingerprint);
	else
		fprintf(report_fp, "Signed by %s: valid, trusted\n", who);
}

static void text_report(const struct p11mail_verify_result *r)
{
	if (r->verdict == P11MAIL_VERDICT_UNSIGNED && r->signer_count > 0)
		fprintf(report_fp, "Not signed as a whole: %s\n", r->problem);
	else if (r->problem != NULL)
		fprintf(report_fp, "%s: %s\n",
		        r->verdict == P11MAIL_VERDICT_UNSIGNED ? "Not signed"
		                                               : "INVALID",
		        r->problem);
	for (size_t i = 0; i < r->signer_count; i++) {
		if (r->verdict == P11MAIL_VERDICT_UNSIGNED)
			fprintf(report_fp, "Part %s: ", r->signed_part);
		text_signer(&r->signers[i], r->sender != NULL);
	}
}

int smime_report(const struct p11mail_verify_result *r, int json,
                 const char *extra_json, FILE *fp)
{
	report_fp = fp;
	if (json)
		json_report(r, extra_json);
	else
		text_report(r);
	fflush(fp);
	return verdict_exit(r->verdict);
}

/*
 * A verification that could not be made, as the same JSON object: verdict
 * "malformed" (the input is not a message that can be examined) or
 * "error" (nothing was examined), with the exit status and the reason.
 */
static void json_failure(const char *verdict, int exit_status,
                         const char *problem)
{
	report_fp = stdout;
	fprintf(report_fp,
	        "{\"verdict\":\"%s\",\"exit\":%d,\"sender\":null,"
	        "\"signed_part\":null,\"opaque\":false,\"problem\":",
	        verdict, exit_status);
	json_string(problem);
	fputs(",\"signers\":[]}\n", report_fp);
	fflush(report_fp);
}

int cmd_verify(const struct tool_globals *g, int argc, char **argv)
{
	struct smime_opts o;
	p11mail_smime *smime = NULL;
	struct p11mail_verify_result *r = NULL;
	unsigned char *in = NULL;
	size_t in_len = 0;
	enum p11mail_status st;
	int rc;

	rc = smime_parse_opts(g, argc, argv, "ajnm", verify_help, &o);
	if (rc != TOOL_EXIT_OK)
		return rc < 0 ? TOOL_EXIT_OK : rc;
	rc = TOOL_EXIT_INVALID;
	smime = smime_setup(g, &o, SMIME_NEED_NOTHING);
	if (smime == NULL) {
		rc = o.setup_exit;
		if (o.json)
			json_failure("error", rc,
			             "the configuration, store or token could "
			             "not be used");
		goto out;
	}
	if (smime_read_input(o.in, &in, &in_len) != 0) {
		rc = TOOL_EXIT_FAILURE;
		if (o.json)
			json_failure("error", rc, "cannot read the message");
		goto out;
	}
	st = p11mail_smime_verify(smime, in, in_len, &r);
	if (st != P11MAIL_OK) {
		tool_error("cannot verify: %s", p11mail_strerror(st));
		if (o.json)
			json_failure(st == P11MAIL_ERR_FORMAT ||
			                             st == P11MAIL_ERR_LIMIT
			                     ? "malformed"
			                     : "error",
			             rc, p11mail_strerror(st));
		goto out;
	}
	rc = smime_report(r, o.json, NULL, stdout);
	if (o.content_out != NULL && r->content != NULL &&
	    smime_write_output(o.content_out, r->content, r->content_len) != 0)
		rc = TOOL_EXIT_FAILURE;

out:
	p11mail_verify_result_free(r);
	free(in);
	p11mail_smime_free(smime);
	smime_opts_clear(&o);
	return rc;
}
