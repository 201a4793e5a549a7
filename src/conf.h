/*
 * The configuration file: INI-style "[section]" and "key = value" lines,
 * "#" comments.  One file, found by --config FILE, P11MAIL_CONFIG,
 * $XDG_CONFIG_HOME/p11mail/p11mail.conf, then /etc/p11mail/p11mail.conf.
 * Every key is described in p11mail.conf(5).
 *
 * (Named conf.h because "config.h" is autoconf's header.)
 */
#ifndef P11MAIL_CONF_H
#define P11MAIL_CONF_H

#include "p11mail.h"
#include "token.h"

/*
 * The public part (p11mail_config_load, p11mail_config_get, ...) is in
 * p11mail.h; these helpers serve the library and the tools.
 */

/* What [policy] discovery asks for, in the order of its choices. */
enum p11m_discovery {
	P11M_DISCOVERY_OFF = 0,
	P11M_DISCOVERY_ASK,
	P11M_DISCOVERY_ON
};

/*
 * How [account] smtp-tls protects the submission connection, in the order
 * of its choices.
 */
enum p11m_smtp_tls {
	P11M_SMTP_STARTTLS = 0,
	P11M_SMTP_IMPLICIT,
	P11M_SMTP_NONE
};

/* [policy] discovery; P11M_DISCOVERY_OFF when unset. */
enum p11m_discovery p11m_config_discovery(const struct p11mail_config *cfg);

/* [account] smtp-tls; P11M_SMTP_STARTTLS when unset. */
enum p11m_smtp_tls p11m_config_smtp_tls(const struct p11mail_config *cfg);

/*
 * Fills opts for tok_core_new from [token].  Strings are borrowed from cfg,
 * which must outlive the token core's creation.  A pin-source installs a
 * PIN callback reading that file.  Prompting stays allowed.
 */
void p11m_config_token_options(const struct p11mail_config *cfg,
                               struct tok_options *opts);

#endif /* P11MAIL_CONF_H */
